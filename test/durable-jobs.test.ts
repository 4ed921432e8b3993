// Training jobs survive the server: real `aiaas serve` processes with a state folder, killed with SIGKILL at
// random moments of a Train job (uploading, training, checkpointing, publishing). After each restart the job
// goes on by itself from its newest checkpoint (or, when its upload was cut off, the client's retry with the
// same idempotency key submits it again); it ends SUCCEEDED with the same weights as an uninterrupted run of
// the same seed, nothing is published twice or half, and its uploaded data is gone once it ends.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient, Tensor, type AiaasClient, type TrainChunk, type TrainEvent, type TrainSpecInput } from "@aiaas/sdk";
import { training } from "@aiaas/server";
import { KeyStore } from "../server/src/auth/index.js";
import { MIGRATIONS, migrate, openEmbeddedDatabase } from "../server/src/state/index.js";
import { serveProcess } from "./support/serve-process.js";

const MOMENTS = Number(process.env.AIAAS_FAULT_MOMENTS ?? 10);

interface Server {
  readonly child: ChildProcess;
  readonly client: AiaasClient;
  readonly startedMs: number;
}

/** `crashAt`: the server SIGKILLs itself at that named point (AIAAS_TEST_HOOKS fault injection). */
async function startServer(models: string, state: string, crashAt?: string): Promise<Server> {
  const started = performance.now();
  const { child, address } = await serveProcess(["--models", models, "--state-dir", state], crashAt ? { AIAAS_TEST_HOOKS: "1", AIAAS_CRASH_AT: crashAt } : {});
  return { child, client: createClient({ address, defaultTimeoutMs: 60_000 }), startedMs: performance.now() - started };
}

async function kill9(server: Server): Promise<void> {
  server.client.close();
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGKILL");
  await exited;
}

/** 4,096 rows of 64 features in 4 classes, a fixed function of the row index (the same bytes every upload). */
function* examples(): Iterable<TrainChunk> {
  for (let chunk = 0; chunk < 16; chunk++) {
    const x = new Float32Array(256 * 64);
    const y = new BigInt64Array(256);
    for (let r = 0; r < 256; r++) {
      const row = chunk * 256 + r;
      for (let f = 0; f < 64; f++) x[r * 64 + f] = Math.sin(row * 0.37 + f * 1.3);
      y[r] = BigInt((row * 7) % 4);
    }
    yield { inputs: { x: Tensor.float32([256, 64], x) }, labels: Tensor.int64([256], y) };
  }
}

const spec = (model: string, key: string): TrainSpecInput => ({
  model,
  architecture: { input: { name: "x", dims: [64] }, layers: [{ type: "dense", units: 128 }, { type: "relu" }, { type: "dense", units: 4 }] },
  task: "classification",
  optimizer: { type: "adam", learningRate: 0.001 },
  batchSize: 64,
  epochs: 12,
  seed: 7,
  checkpointIntervalSteps: 40,
  validationFraction: 0,
  idempotencyKey: key,
});

/** Trains to the end (or until the stream breaks); returns the events seen. */
async function train(client: AiaasClient, input: TrainSpecInput): Promise<{ events: TrainEvent[]; error?: unknown }> {
  const events: TrainEvent[] = [];
  try {
    for await (const event of client.train(input, examples())) events.push(event);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

/** The trained weights of a published version, by initializer name. */
async function weights(models: string, model: string, version: string): Promise<Map<string, Buffer>> {
  const proto = training.decodeModel(await readFile(join(models, model, version, "model.onnx")));
  return new Map(proto.graph!.initializer.map((t) => [t.name, Buffer.from(t.rawData)]));
}

describe("durable training jobs", () => {
  let dir: string;
  let models: string;
  let state: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-durable-"));
    models = join(dir, "models");
    state = join(dir, "state");
    await mkdir(models);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("migrates the schema once, versioned", async () => {
    const db = await openEmbeddedDatabase(join(dir, "db-probe"));
    try {
      const all = MIGRATIONS.map((m) => m.version);
      assert.deepEqual(all, [...all].sort((a, b) => a - b), "versions in order");
      assert.deepEqual(await migrate(db), all);
      assert.deepEqual(await migrate(db), [], "a second start runs nothing");
      const rows = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      assert.deepEqual(rows.map((r) => Number(r.version)), all);
    } finally {
      await db.close();
    }
  });

  it(`survives kill -9 at ${MOMENTS} random moments of a Train job: resumed, identical weights, published once`, async () => {
    let server = await startServer(models, state);
    const restarts: number[] = [];
    try {
      const reference = await train(server.client, spec("reference", "ref"));
      const done = reference.events.find((e) => e.type === "completed");
      assert.ok(done && done.type === "completed", `the uninterrupted run completes: ${String(reference.error)}`);
      const jobMs = reference.events.at(-1)!.time.getTime() - reference.events[0]!.time.getTime() + 300;
      const expected = await weights(models, "reference", done.version);
      const outcomes = { resumed: 0, resubmitted: 0, adopted: 0, finishedBeforeKill: 0 };
      // Random moments over the job's length, then the points no timing hits reliably, where the server
      // SIGKILLs itself: data synced, a checkpoint written, a version staged, a version renamed into place.
      const targeted = ["data-synced", "checkpoint-written", "publish-staged", "publish-renamed"];
      for (let i = 0; i < MOMENTS + targeted.length; i++) {
        const model = `moment${i}`;
        const point = targeted[i - MOMENTS];
        const delay = point ? 0 : 5 + Math.round(Math.random() * (jobMs - 300));
        if (point) {
          await kill9(server);
          server = await startServer(models, state, point);
        }
        const first = train(server.client, spec(model, `key-${i}`));
        if (point) await new Promise((resolve) => (server.child.signalCode ? resolve(undefined) : server.child.once("exit", resolve)));
        else await new Promise((resolve) => setTimeout(resolve, delay));
        await kill9(server);
        const firstJob = (await first).events[0]?.jobId;
        server = await startServer(models, state);
        restarts.push(server.startedMs);
        const retry = await train(server.client, spec(model, `key-${i}`));
        const completed = retry.events.find((e) => e.type === "completed");
        assert.ok(completed && completed.type === "completed", `moment ${i} (${point ?? `${delay} ms`}): the job completes after the restart: ${String(retry.error)} ${JSON.stringify(retry.events.map((e) => e.type))}`);
        if (completed.jobId !== firstJob) outcomes.resubmitted++;
        else if (retry.events.some((e) => e.type === "resumed" && /was written/.test(e.reason))) outcomes.adopted++;
        else if (retry.events.some((e) => e.type === "resumed")) outcomes.resumed++;
        else outcomes.finishedBeforeKill++;
        const versions = (await readdir(join(models, model))).filter((f) => !f.endsWith(".json"));
        assert.deepEqual(versions, ["1"], `moment ${i} (${point ?? `${delay} ms`}): published exactly once, nothing half-written`);
        const metrics = JSON.parse(await readFile(join(models, model, "1", "metrics.json"), "utf8")) as { job: string };
        assert.equal(metrics.job, completed.jobId, "the version is the job's");
        const got = await weights(models, model, "1");
        for (const [name, bytes] of expected) assert.ok(got.get(name)?.equals(bytes), `moment ${i} (${delay} ms): weights ${name} equal the uninterrupted run's`);
        const job = await server.client.jobs.get(completed.jobId);
        assert.equal(job.state, "succeeded");
      }
      // An ended job's history after a restart: read from the database when watched, whole and in order.
      await kill9(server);
      server = await startServer(models, state);
      const history: TrainEvent[] = [];
      for await (const event of server.client.jobs.watch(done.jobId)) history.push(event);
      assert.deepEqual(history.map((e) => e.eventId), reference.events.map((e) => e.eventId), "the reference job's whole history");
      assert.equal(history.at(-1)!.type, reference.events.at(-1)!.type);
      assert.equal((await server.client.jobs.get(done.jobId)).lastEventId, BigInt(history.length));
      const leftovers = await readdir(join(state, "job-data", "_")).catch(() => []);
      const states = await Promise.all(leftovers.map((f) => server.client.jobs.get(f.replace(".chunks", "")).then((j) => `${j.id} ${j.state} ${j.error?.message ?? ""}`, (e: Error) => `${f}: ${e.message}`)));
      assert.deepEqual(states, [], "no job's uploaded data is left once it ended");
      console.log(
        `# ${MOMENTS} random kill -9 moments over a ${jobMs - 300} ms job and ${targeted.length} at named points (${targeted.join(", ")}): ${outcomes.resumed} resumed by the server, ${outcomes.adopted} found already published, ` +
          `${outcomes.resubmitted} re-submitted by the client (upload cut off), ${outcomes.finishedBeforeKill} finished before the kill; ` +
          `restart to listening ${restarts.map((ms) => ms.toFixed(0)).join(", ")} ms`,
      );
    } finally {
      await kill9(server).catch(() => undefined);
    }
  });

  it("a SIGTERM during an upload fails that job and frees its key; the retry submits it anew", async () => {
    let server = await startServer(models, state);
    try {
      let release!: () => void;
      const stalled = new Promise<void>((resolve) => (release = resolve));
      async function* halfUpload(): AsyncGenerator<TrainChunk> {
        let n = 0;
        for (const chunk of examples()) {
          if (n++ === 4) await stalled; // the rest never comes before the shutdown
          yield chunk;
        }
      }
      const events: TrainEvent[] = [];
      const first = (async () => {
        try {
          for await (const e of server.client.train(spec("sigterm", "key-sigterm"), halfUpload())) events.push(e);
        } catch {
          // the shutdown ends the stream
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exited = new Promise((resolve) => server.child.once("exit", resolve));
      server.child.kill("SIGTERM");
      await exited;
      release();
      await first;
      const firstJob = events[0]!.jobId;
      server = await startServer(models, state);
      const old = await server.client.jobs.get(firstJob);
      assert.equal(old.state, "failed");
      assert.equal(old.error?.code, 10, "ABORTED");
      const retry = await train(server.client, spec("sigterm", "key-sigterm"));
      const completed = retry.events.find((e) => e.type === "completed");
      assert.ok(completed && completed.type === "completed" && completed.jobId !== firstJob, "the retry is a new job that completes");
    } finally {
      await kill9(server);
    }
  });

  it("a tenant's job resumes after kill -9 and publishes into that tenant's models, its upload in its own folder", async () => {
    const keysFile = join(dir, "keys.json");
    const store = await KeyStore.open(keysFile);
    const { token } = await store.create({ tenant: "acme", roles: ["predict", "train"], name: "t" });
    store.close();
    const tenantState = join(dir, "state-tenants");
    const start = () => serveProcess(["--models", models, "--keys", keysFile, "--state-dir", tenantState]);
    let server = await start();
    try {
      let client = createClient({ address: server.address, apiKey: token });
      let jobId = "";
      for await (const event of client.train(spec("tenant-model", "tenant-key"), examples())) {
        jobId = event.jobId;
        if (event.type === "checkpoint") break;
      }
      assert.ok((await readdir(join(tenantState, "job-data", "acme"))).includes(`${jobId}.chunks`), "the upload is kept in the tenant's folder");
      client.close();
      server.child.kill("SIGKILL");
      await new Promise((resolve) => server.child.once("exit", resolve));
      server = await start();
      client = createClient({ address: server.address, apiKey: token });
      const events: TrainEvent[] = [];
      for await (const event of client.jobs.watch(jobId)) events.push(event);
      const completed = events.find((e) => e.type === "completed");
      assert.ok(events.some((e) => e.type === "resumed") && completed && completed.type === "completed");
      assert.deepEqual((await readdir(join(`${models}.tenants`, "acme", "tenant-model"))).filter((f) => !f.endsWith(".json")), ["1"], "published into the tenant's tree");
      await assert.rejects(readdir(join(models, "tenant-model")), /ENOENT/, "not into the public one");
      // The upload is deleted as the job ends, after its last event went out: wait a moment for it.
      const uploads = join(tenantState, "job-data", "acme");
      for (let i = 0; i < 50 && (await readdir(uploads)).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(await readdir(uploads), [], "its upload is gone once it ended");
      const res = await client.predict("tenant-model", { x: Tensor.float32([1, 64], new Float32Array(64)) });
      assert.equal(res.version, "1", "the tenant's restarted job serves");
      client.close();
    } finally {
      server.child.kill("SIGKILL");
      await rm(`${models}.tenants`, { recursive: true, force: true });
    }
  });
});
