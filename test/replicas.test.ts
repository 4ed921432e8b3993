// Three replicas of `aiaas serve` (real processes) on one PostgreSQL database and one shared state folder and
// model repository, as the Kubernetes manifests run them: jobs, keys, quotas and model control are one service.
// Each run makes its own database and drops it; without a reachable PostgreSQL the tests skip, saying so.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient, Tensor, type AiaasClient, type TrainEvent, type TrainSpecInput } from "@aiaas/sdk";
import { serveProcess, type ServeProcess } from "./support/serve-process.js";
import { pgSkip, testDatabase } from "./support/postgres.js";

const LEASE_MS = 1000;

const x = Tensor.float32([512, 8], Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 0.37)));
const y = Tensor.int64([512], BigInt64Array.from({ length: 512 }, (_, i) => BigInt(i % 3)));
const spec = (model: string, epochs: number): TrainSpecInput => ({
  model,
  architecture: { input: { name: "x", dims: [8] }, layers: [{ type: "dense", units: 3 }] },
  task: "classification",
  epochs,
  batchSize: 64,
  checkpointIntervalSteps: 50,
  seed: 3,
  validationFraction: 0,
});

describe("three replicas on one PostgreSQL", { skip: pgSkip }, () => {
  let dir = "";
  let drop = async (): Promise<void> => undefined;
  let args: string[] = [];
  const replicas: ServeProcess[] = [];
  const clients: AiaasClient[] = [];

  const startReplica = async (): Promise<number> => {
    const replica = await serveProcess(args);
    replicas.push(replica);
    clients.push(createClient({ address: replica.address }));
    return replicas.length - 1;
  };

  before(async () => {
    const db = await testDatabase();
    drop = db.drop;
    dir = await mkdtemp(join(tmpdir(), "aiaas-replicas-"));
    await mkdir(join(dir, "models"));
    args = ["--models", join(dir, "models"), "--state-dir", join(dir, "state"), "--database-url", db.url, "--job-lease-ms", String(LEASE_MS)];
    // One at a time first (the schema is migrated once), then the rest together.
    await startReplica();
    await Promise.all([startReplica(), startReplica()]);
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const r of replicas) r.child.kill("SIGKILL");
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a job started through A is watched through B and cancelled through C", async () => {
    const [a, b, c] = clients as [AiaasClient, AiaasClient, AiaasClient];
    const stream = a.train(spec("cancel-me", 10_000), [{ inputs: { x }, labels: y }]);
    const iterator = stream[Symbol.asyncIterator]();
    let jobId = "";
    while (!jobId) jobId = (await iterator.next()).value!.jobId;
    const watched: TrainEvent[] = [];
    let sawMetrics!: () => void;
    const metricsSeen = new Promise<void>((resolve) => (sawMetrics = resolve));
    const watching = (async () => {
      for await (const e of b.jobs.watch(jobId)) {
        watched.push(e);
        if (e.type === "metrics") sawMetrics();
      }
    })();
    await metricsSeen; // B follows A's job as it trains
    assert.equal((await c.jobs.get(jobId)).state, "running");
    assert.ok((await c.jobs.list()).some((j) => j.id === jobId), "ListJobs through C lists it");
    await c.jobs.cancel(jobId);
    await watching;
    assert.deepEqual(watched.at(-1), { ...watched.at(-1), type: "state", state: "cancelled" });
    await assert.rejects(async () => {
      for (;;) if ((await iterator.next()).done) break;
    }, (e: Error & { code?: string }) => e.code === "CANCELLED" || /cancel/i.test(e.message));
    assert.equal((await b.jobs.get(jobId)).state, "cancelled");
  });

  it("a replica killed mid-job: another takes the job over from its checkpoint and finishes it", async () => {
    const victim = await startReplica();
    const client = clients[victim]!;
    let jobId = "";
    for await (const e of client.train(spec("takeover", 1500), [{ inputs: { x }, labels: y }])) {
      jobId = e.jobId;
      if (e.type === "checkpoint") break;
    }
    const killedAt = Date.now();
    replicas[victim]!.child.kill("SIGKILL");
    const events: TrainEvent[] = [];
    let resumedAt = 0;
    for await (const e of clients[1]!.jobs.watch(jobId)) {
      events.push(e);
      if (e.type === "resumed") resumedAt = Date.now();
    }
    const resumed = events.find((e) => e.type === "resumed");
    assert.ok(resumed && resumed.type === "resumed" && resumed.fromStep > 0, "resumed from a checkpoint, not from scratch");
    const job = await clients[2]!.jobs.get(jobId);
    assert.equal(job.state, "succeeded");
    console.log(`# takeover: job resumed on another replica ${resumedAt - killedAt} ms after kill -9 (lease ${LEASE_MS} ms)`);
  });
});
