// The state database on a real PostgreSQL server (127.0.0.1:5432, or AIAAS_TEST_PG_URL): the same migrations
// and job journal as the embedded database, and a server with --database-url that takes a job up again after
// kill -9. Each run makes its own database and drops it; without a reachable server the tests skip, saying so.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { JobState, TrainSpec } from "@aiaas/sdk/gen";
import { createClient, Tensor, type TrainEvent } from "@aiaas/sdk";
import { MIGRATIONS, migrate, openPostgresDatabase } from "../server/src/state/index.js";
import { JobRecord, SqlJobJournal } from "../server/src/training/jobs/index.js";
import { serveProcess } from "./support/serve-process.js";
import { pgSkip, testDatabase } from "./support/postgres.js";

let dbUrl = "";
let drop = async (): Promise<void> => undefined;

describe("state on a PostgreSQL server", { skip: pgSkip }, () => {
  before(async () => {
    ({ url: dbUrl, drop } = await testDatabase());
  });
  after(() => drop());

  it("runs the migrations once and stores a job's events and idempotency key as the embedded database does", async () => {
    const db = await openPostgresDatabase(dbUrl);
    try {
      assert.deepEqual(await migrate(db), MIGRATIONS.map((m) => m.version));
      assert.deepEqual(await migrate(db), []);
      const journal = new SqlJobJournal(db);
      const spec = TrainSpec.fromPartial({ model: "m", idempotencyKey: "k" });
      const job = new JobRecord({ id: randomUUID(), created: new Date(), tenant: "acme", model: "m", idempotencyKey: "k" }, { tenant: "acme", onEnd: () => undefined });
      job.attachJournal(journal.append);
      assert.equal(await journal.create(job, spec, ""), true);
      const twin = new JobRecord({ id: randomUUID(), created: new Date(), tenant: "acme", model: "m", idempotencyKey: "k" }, { tenant: "acme", onEnd: () => undefined });
      assert.equal(await journal.create(twin, spec, ""), false, "the key is taken within (tenant, model)");
      job.setState(JobState.JOB_STATE_RUNNING, "training");
      job.fail(3, "bad data");
      await job.flushed();
      const [stored] = await journal.load();
      assert.equal(stored!.id, job.id);
      assert.equal(stored!.tenant, "acme");
      assert.equal(stored!.state, JobState.JOB_STATE_FAILED);
      assert.deepEqual(stored!.events, [], "an ended job's events are read when watched");
      const events = await journal.events(job.id);
      assert.deepEqual(events.map((e) => e.event?.$case), ["state", "failed", "state"]);
      await journal.releaseKey(job.id);
      assert.equal(await journal.create(twin, spec, ""), true, "a released key can be used again");
    } finally {
      await db.close();
    }
  });

  it("a server with --database-url takes a job up again after kill -9", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-pg-"));
    await mkdir(join(dir, "models"));
    const start = () => serveProcess(["--models", join(dir, "models"), "--state-dir", join(dir, "state"), "--database-url", dbUrl, "--job-lease-ms", "1000"]);
    let server = await start();
    try {
      const x = Tensor.float32([512, 8], Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i)));
      const y = Tensor.int64([512], BigInt64Array.from({ length: 512 }, (_, i) => BigInt(i % 3)));
      const spec = { model: "pg-job", architecture: { input: { name: "x", dims: [8] }, layers: [{ type: "dense" as const, units: 3 }] }, task: "classification" as const, epochs: 400, batchSize: 64, checkpointIntervalSteps: 100, seed: 1, validationFraction: 0, idempotencyKey: "pg" };
      let client = createClient({ address: server.address });
      let jobId = "";
      for await (const event of client.train(spec, [{ inputs: { x }, labels: y }])) {
        jobId = event.jobId;
        if (event.type === "checkpoint") break; // a checkpoint is on disk: kill the server now
      }
      client.close();
      server.child.kill("SIGKILL");
      await new Promise((resolve) => server.child.once("exit", resolve));
      server = await start();
      client = createClient({ address: server.address });
      const events: TrainEvent[] = [];
      for await (const event of client.jobs.watch(jobId)) events.push(event);
      assert.ok(events.some((e) => e.type === "resumed"), "resumed after the restart");
      assert.equal(events.at(-1)?.type, "state");
      assert.equal((await client.jobs.get(jobId)).state, "succeeded");
      client.close();
    } finally {
      server.child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});
