import type { JobRecord } from "./train-job.js";

/**
 * Where jobs are kept and found: by id, and by the idempotency key a retried Train carries (scoped by the
 * caller: tenant, model and key). The job manager and the RPC handlers only use this interface, so a
 * durable or shared store can take the in-memory one's place.
 */
export interface JobStore {
  add(job: JobRecord, idempotencyKey: string | undefined): void;
  get(id: string): JobRecord | undefined;
  byIdempotencyKey(key: string): JobRecord | undefined;
  /** Frees the idempotency key a job holds (its upload was cut off: a retry submits it anew). */
  forgetKey(job: JobRecord): void;
  /** Forgets a job (another replica runs it now). */
  remove(job: JobRecord): void;
  /** Every job kept, in no particular order. */
  all(): Iterable<JobRecord>;
}

/** The scope of an idempotency key: one tenant's one model. */
export const idempotencyScope = (tenant: string | undefined, model: string, key: string): string => `${tenant ?? ""}\u0000${model}\u0000${key}`;

/** Jobs in memory, forgotten at restart: the newest `maxKept`, ended ones evicted first. */
export function createMemoryJobStore(maxKept = 1000): JobStore {
  const jobs = new Map<string, JobRecord>();
  const byKey = new Map<string, JobRecord>();
  const keyOf = new Map<JobRecord, string>();
  return {
    add(job, idempotencyKey) {
      jobs.set(job.id, job);
      if (idempotencyKey) {
        byKey.set(idempotencyKey, job);
        keyOf.set(job, idempotencyKey);
      }
      for (const [id, old] of jobs) {
        if (jobs.size <= maxKept) break;
        if (!old.terminal) continue;
        jobs.delete(id);
        const key = keyOf.get(old);
        keyOf.delete(old);
        if (key !== undefined && byKey.get(key) === old) byKey.delete(key);
      }
    },
    get: (id) => jobs.get(id),
    forgetKey(job) {
      const key = keyOf.get(job);
      keyOf.delete(job);
      if (key !== undefined && byKey.get(key) === job) byKey.delete(key);
    },
    byIdempotencyKey: (key) => byKey.get(key),
    remove(job) {
      if (jobs.get(job.id) === job) jobs.delete(job.id);
      this.forgetKey(job);
    },
    all: () => jobs.values(),
  };
}
