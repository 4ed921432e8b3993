/**
 * The project's status codes: the gRPC codes by name and number (as connect-es's `Code`), so every layer
 * can say what went wrong without knowing the transport; rpc/ hands them to grpc-js unchanged.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** A code's name, e.g. "NOT_FOUND". */
export const codeName = (code: Code): string => Object.keys(Code).find((k) => Code[k as keyof typeof Code] === code) ?? String(code);

const MARK = Symbol.for("aiaas.ServerError");

/**
 * The one error type of the server: a gRPC status code and a message a user can act on. Every layer
 * (repository, runtime, batcher, rpc) throws it; anything else that escapes becomes INTERNAL without
 * leaking its internals to the caller.
 */
export class ServerError extends Error {
  readonly code: Code;
  /** For RESOURCE_EXHAUSTED: when a retry may succeed, sent as the `retry-after-ms` trailer. */
  readonly retryAfterMs: number | undefined;
  readonly [MARK] = true;

  constructor(code: Code, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = "ServerError";
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** instanceof that also holds across duplicate copies of this module. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }

  /** Wraps anything thrown: a ServerError passes through; an unknown error becomes INTERNAL. */
  static from(error: unknown): ServerError {
    if (error instanceof ServerError) return error;
    return new ServerError(Code.INTERNAL, "internal error", { cause: error });
  }
}

export const invalidArgument = (message: string): ServerError => new ServerError(Code.INVALID_ARGUMENT, message);
export const notFound = (message: string): ServerError => new ServerError(Code.NOT_FOUND, message);
export const failedPrecondition = (message: string): ServerError => new ServerError(Code.FAILED_PRECONDITION, message);
export const unavailable = (message: string): ServerError => new ServerError(Code.UNAVAILABLE, message);
export const resourceExhausted = (message: string, retryAfterMs?: number): ServerError =>
  new ServerError(Code.RESOURCE_EXHAUSTED, message, { retryAfterMs });
export const unauthenticated = (message: string): ServerError => new ServerError(Code.UNAUTHENTICATED, message);
export const permissionDenied = (message: string): ServerError => new ServerError(Code.PERMISSION_DENIED, message);
export const deadlineExceeded = (message: string): ServerError => new ServerError(Code.DEADLINE_EXCEEDED, message);
export const cancelled = (message: string): ServerError => new ServerError(Code.CANCELLED, message);
