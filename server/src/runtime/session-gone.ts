const MARK = Symbol.for("aiaas.SessionGone");

/**
 * A session that can run nothing more: its worker exited (crash, out of memory, process.exit) or it was
 * closed. Distinct from a run that failed on its data, so the batcher answers UNAVAILABLE (retry) rather
 * than INVALID_ARGUMENT, and can tell without reading the message.
 */
export class SessionGoneError extends Error {
  override readonly name = "SessionGoneError";
  readonly [MARK] = true;

  /** instanceof that also holds across duplicate copies of this module. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }
}
