// The in-memory job store: lookup by id and by scoped idempotency key, and eviction of ended jobs only.
import assert from "node:assert/strict";
import { it } from "node:test";
import { createMemoryJobStore, idempotencyScope } from "../server/src/training/jobs/job-store.js";
import type { TrainJob } from "../server/src/training/jobs/train-job.js";

/** The store reads only a job's id and whether it has ended. */
const job = (id: string, terminal: boolean): TrainJob => ({ id, terminal }) as unknown as TrainJob;

it("keeps the newest jobs, evicts ended ones first, never a running one, and forgets an evicted job's key", () => {
  const store = createMemoryJobStore(3);
  const running = job("running", false);
  store.add(running, idempotencyScope("acme", "m", "k-running"));
  store.add(job("done-1", true), idempotencyScope("acme", "m", "k-1"));
  store.add(job("done-2", true), undefined);
  store.add(job("new", false), undefined);
  assert.equal(store.get("running"), running, "a running job is never evicted");
  assert.equal(store.get("done-1"), undefined, "the oldest ended job went");
  assert.equal(store.byIdempotencyKey(idempotencyScope("acme", "m", "k-1")), undefined, "with its key");
  assert.equal(store.byIdempotencyKey(idempotencyScope("acme", "m", "k-running")), running);
  assert.deepEqual([...store.all()].map((j) => j.id).sort(), ["done-2", "new", "running"]);
  // Keys are scoped by tenant and model: the same key elsewhere is another key.
  assert.equal(store.byIdempotencyKey(idempotencyScope("other", "m", "k-running")), undefined);
  assert.equal(store.byIdempotencyKey(idempotencyScope("acme", "m2", "k-running")), undefined);
});
