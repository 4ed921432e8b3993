import { resourceExhausted } from "../common/errors.js";
import type { Caller } from "./caller.js";
import type { KeyDirectory } from "./key-directory.js";
import type { QuotaCounters, ResolvedLimits } from "./quota-counters.js";
import type { SharedRate } from "./shared-rate.js";

/** Replicas sharing a database: the rate comes from the shared buckets; in-flight limits are split between the replicas alive. */
export interface ClusterQuotas {
  readonly rate: SharedRate;
  readonly replicas: () => number;
}


interface Bucket {
  tokens: number;
  updated: number;
  inFlight: number;
  jobs: number;
}

/**
 * The quota counters of one process. Per-tenant limits, checked at once and never queued: a token bucket for
 * requests per second, a count of calls in flight and of training jobs. Limits come from the key, else the
 * tenant, else the server's defaults. Over a limit is RESOURCE_EXHAUSTED with a hint of when to retry. With
 * `cluster` (replicas sharing a database) the rate is the tenant's across all replicas (SharedRate) and each
 * replica admits its equal share of the calls in flight.
 */
export class Quotas implements QuotaCounters {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly defaults: ResolvedLimits,
    private readonly keys: KeyDirectory | undefined,
    private readonly cluster?: ClusterQuotas,
  ) {}

  limitsOf(caller: Caller): ResolvedLimits {
    if (!caller.tenant || !this.keys) return this.defaults;
    const tenant = this.keys.tenantLimits(caller.tenant) ?? {};
    const key = this.keys.current(caller.keyId)?.limits ?? {};
    return { ...this.defaults, ...tenant, ...key };
  }

  private bucket(caller: Caller): Bucket | undefined {
    if (!caller.tenant) return undefined; // the operator (auth off) is not limited
    let b = this.buckets.get(caller.tenant);
    if (!b) {
      b = { tokens: this.limitsOf(caller).burst, updated: performance.now(), inFlight: 0, jobs: 0 };
      this.buckets.set(caller.tenant, b);
    }
    return b;
  }

  /** Takes one request token. */
  takeRequest(caller: Caller): void {
    const b = this.bucket(caller);
    if (!b) return;
    const limits = this.limitsOf(caller);
    if (this.cluster) return this.cluster.rate.take(caller.tenant!, limits);
    const now = performance.now();
    b.tokens = Math.min(limits.burst, b.tokens + ((now - b.updated) / 1000) * limits.requestsPerSecond);
    b.updated = now;
    if (b.tokens < 1) {
      const waitMs = Math.ceil(((1 - b.tokens) / limits.requestsPerSecond) * 1000);
      throw resourceExhausted(`tenant "${caller.tenant}" is over its rate limit of ${limits.requestsPerSecond} requests/s; retry in ${waitMs} ms`, waitMs);
    }
    b.tokens -= 1;
  }

  /** Counts a call in flight until the returned release runs. */
  enter(caller: Caller): () => void {
    const b = this.bucket(caller);
    if (!b) return noop;
    const limits = this.limitsOf(caller);
    const replicas = this.cluster?.replicas() ?? 1;
    const limit = Math.max(1, Math.ceil(limits.maxInFlight / replicas));
    if (b.inFlight >= limit) {
      const which = replicas > 1 ? `this replica's share (${limit}) of its limit of ${limits.maxInFlight} over ${replicas} replicas` : "its limit";
      throw resourceExhausted(`tenant "${caller.tenant}" already has ${b.inFlight} calls in flight (${which}); retry when one finishes`, 50);
    }
    b.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      b.inFlight--;
    };
  }

  /** Counts a training job until the returned release runs. */
  enterJob(caller: Caller): () => void {
    const b = this.bucket(caller);
    if (!b) return noop;
    const limits = this.limitsOf(caller);
    if (b.jobs >= limits.maxConcurrentJobs) {
      throw resourceExhausted(`tenant "${caller.tenant}" already has ${b.jobs} training jobs queued or running (its limit); retry when one ends`, 1000);
    }
    b.jobs++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      b.jobs--;
    };
  }
}

const noop = (): void => undefined;
