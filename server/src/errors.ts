import { status } from "@grpc/grpc-js";

const MARK = Symbol.for("aiaas.ServerError");

/**
 * The one error type of the server: a gRPC status code and a message a user can act on. Every layer
 * (repository, runtime, batcher, rpc) throws it; anything else that escapes becomes INTERNAL without
 * leaking its internals to the caller.
 */
export class ServerError extends Error {
  readonly code: status;
  /** For RESOURCE_EXHAUSTED: when a retry may succeed, sent as the `retry-after-ms` trailer. */
  readonly retryAfterMs: number | undefined;
  readonly [MARK] = true;

  constructor(code: status, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
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
    return new ServerError(status.INTERNAL, "internal error", { cause: error });
  }
}

export const invalidArgument = (message: string): ServerError => new ServerError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): ServerError => new ServerError(status.NOT_FOUND, message);
export const failedPrecondition = (message: string): ServerError => new ServerError(status.FAILED_PRECONDITION, message);
export const unavailable = (message: string): ServerError => new ServerError(status.UNAVAILABLE, message);
export const resourceExhausted = (message: string, retryAfterMs?: number): ServerError =>
  new ServerError(status.RESOURCE_EXHAUSTED, message, { retryAfterMs });
export const unauthenticated = (message: string): ServerError => new ServerError(status.UNAUTHENTICATED, message);
export const permissionDenied = (message: string): ServerError => new ServerError(status.PERMISSION_DENIED, message);
export const deadlineExceeded = (message: string): ServerError => new ServerError(status.DEADLINE_EXCEEDED, message);
export const cancelled = (message: string): ServerError => new ServerError(status.CANCELLED, message);
