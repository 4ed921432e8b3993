import type { Caller } from "./caller.js";
import type { Limits } from "./key-store.js";

export type ResolvedLimits = Required<Limits>;

/**
 * The per-tenant counters behind quotas: a rate of requests, calls in flight, training jobs. Checked at once
 * and never queued: over a limit throws RESOURCE_EXHAUSTED with a hint of when to retry. The in-memory
 * `Quotas` counts for one process; a shared backend (counters that several replicas see) implements the same.
 */
export interface QuotaCounters {
  /** The caller's limits: its key's, else its tenant's, else the server's defaults. */
  limitsOf(caller: Caller): ResolvedLimits;
  /** Takes one request token of the caller's rate. */
  takeRequest(caller: Caller): void;
  /** Counts a call in flight until the returned release runs (release is idempotent). */
  enter(caller: Caller): () => void;
  /** Counts a training job until the returned release runs (release is idempotent). */
  enterJob(caller: Caller): () => void;
}
