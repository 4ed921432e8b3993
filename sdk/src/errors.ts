import type { Metadata, ServiceError } from "@grpc/grpc-js";

/** gRPC status codes, as numbers on the wire and names for people. */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

const MARK = Symbol.for("@aiaas/sdk.AiaasError");

/**
 * The one error type of the SDK: every failure of a call, whether the server answered with a status or the
 * client refused the input, is an `AiaasError` with the gRPC status `code` and a message a user can act on.
 * `instanceof AiaasError` also holds for errors made by another copy of this package.
 */
export class AiaasError extends Error {
  /** The gRPC status code. */
  readonly code: Code;
  /** The server's status message, without the code prefix. */
  readonly details: string;
  /** Trailing metadata the server sent with the status, if any. */
  readonly metadata: Metadata | undefined;
  readonly [MARK] = true;

  constructor(code: Code, details: string, options?: { cause?: unknown; metadata?: Metadata }) {
    super(`[${Code[code] ?? code}] ${details}`, { cause: options?.cause });
    this.name = "AiaasError";
    this.code = code;
    this.details = details;
    this.metadata = options?.metadata;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }

  /**
   * Wraps anything thrown: an AiaasError passes through, a grpc-js status error keeps its code and details,
   * an AbortSignal's abort becomes CANCELLED (or the signal's own AiaasError reason), anything else UNKNOWN.
   */
  static from(error: unknown): AiaasError {
    if (error instanceof AiaasError) return error;
    if (isServiceError(error)) return new AiaasError(error.code as number as Code, error.details, { cause: error, metadata: error.metadata });
    if (error instanceof Error && error.name === "AbortError") return new AiaasError(Code.CANCELLED, "the call was cancelled", { cause: error });
    const message = error instanceof Error ? error.message : String(error);
    return new AiaasError(Code.UNKNOWN, message, { cause: error });
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as ServiceError).code === "number" && typeof (error as ServiceError).details === "string";
}
