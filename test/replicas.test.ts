// One service from several processes, two ways, with the same tests: three replicas of `aiaas serve` (real
// processes) on one PostgreSQL database and one shared state folder and model repository, as the Kubernetes
// manifests run them; and one `aiaas serve --processes 2` on the embedded database its primary serves. Jobs,
// keys, quotas and model control are one service either way. The PostgreSQL run makes its own database and
// drops it; without a reachable PostgreSQL it skips, saying so.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { AdminClient } from "@aiaas/sdk/gen";
import { createClient, Tensor, type AiaasClient, type TrainEvent, type TrainSpecInput } from "@aiaas/sdk";
import pg from "pg";
import { KeyStore } from "../server/src/auth/index.js";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { serveProcess, type ServeProcess } from "./support/serve-process.js";
import { pgSkip, testDatabase } from "./support/postgres.js";

/** A test that hangs fails instead of holding up the run. */
const LIMIT = { timeout: 120_000 };
const LEASE_MS = 1000;
const RATE = 100;
const BURST = 10;

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

type Mode = "replicas" | "pool";

/** `aiaas serve --processes 2` on the embedded database; resolves once both processes listen. Its log lines go to `lines`. */
function startPool(args: readonly string[], lines: string[]): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ["server/dist/bin/aiaas.js", "serve", "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu", "--processes", "2", ...args], {
    cwd: new URL("..", import.meta.url).pathname,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      if (process.env.AIAAS_TEST_POOL_LOG) appendFileSync(process.env.AIAAS_TEST_POOL_LOG, line + "\n");
      const entry = JSON.parse(line) as { msg: string; address?: string };
      if (entry.msg.includes("with 2 processes")) resolve({ child, address: entry.address! });
    });
    child.once("exit", (code) => reject(new Error(`the pool exited with ${code}`)));
  });
}

for (const mode of ["replicas", "pool"] as Mode[]) suite(mode);

function suite(mode: Mode): void {
describe(mode === "replicas" ? "three replicas on one PostgreSQL" : "a pool of two processes on the embedded database", { skip: mode === "replicas" ? pgSkip : false }, () => {
  let dir = "";
  let drop = async (): Promise<void> => undefined;
  let dbUrl = "";
  let args: string[] = [];
  let adminKey = "";
  let meteredKey = "";
  const replicas: ServeProcess[] = [];
  let pool: { child: ChildProcess; address: string } | undefined;
  const poolLog: string[] = [];
  const clients: AiaasClient[] = [];
  /** The address client i talks to (all one in a pool: each client is its own connection, handed to one process). */
  const addressOf = (i: number): string => pool?.address ?? replicas[i]!.address;
  // Its own connection per client (grpc-js would share one between clients of one address).
  const own = { "grpc.use_local_subchannel_pool": 1 };

  const startReplica = async (): Promise<number> => {
    const replica = await serveProcess(args);
    replicas.push(replica);
    clients.push(createClient({ address: replica.address, apiKey: adminKey }));
    return replicas.length - 1;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-replicas-"));
    await mkdir(join(dir, "models"));
    // The file gives every replica the first admin key; the keys made later live in the database.
    const keysFile = join(dir, "keys.json");
    const store = await KeyStore.open(keysFile);
    adminKey = (await store.create({ tenant: "ops", roles: ["admin"], name: "bootstrap" })).token;
    meteredKey = (await store.create({ tenant: "metered", roles: ["predict"], name: "rate", limits: { requestsPerSecond: RATE, burst: BURST } })).token;
    args = ["--models", join(dir, "models"), "--state-dir", join(dir, "state"), "--job-lease-ms", String(LEASE_MS), "--keys", keysFile];
    if (mode === "pool") {
      pool = await startPool(args, poolLog);
      for (let i = 0; i < 3; i++) clients.push(createClient({ address: pool.address, apiKey: adminKey, channelOptions: own }));
      return;
    }
    const db = await testDatabase();
    drop = db.drop;
    dbUrl = db.url;
    args.push("--database-url", db.url);
    // One at a time first (the schema is migrated once), then the rest together.
    await startReplica();
    await Promise.all([startReplica(), startReplica()]);
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const r of replicas) r.child.kill("SIGKILL");
    pool?.child.kill("SIGKILL");
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a job started through A is watched through B and cancelled through C", LIMIT, async () => {
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
    }, (e: Error & { code?: number }) => e.code === status.CANCELLED);
    assert.equal((await b.jobs.get(jobId)).state, "cancelled");
  });

  it("a job the replica that took it has no slot for runs on another one at once (one queue)", LIMIT, async () => {
    const [a, b] = clients as [AiaasClient, AiaasClient];
    // The first job takes the only training slot of the process it reached...
    let longJob = "";
    const long = (async () => {
      for await (const e of a.train(spec("queue-long", 1500), [{ inputs: { x }, labels: y }])) longJob = e.jobId;
    })();
    // Its stream ends CANCELLED when the job is cancelled below, which may come before the cancel call returns.
    long.catch(() => undefined);
    await until(async () => longJob !== "" && (await b.jobs.get(longJob)).state === "running", "the long job runs");
    // ...a second through the same connection (so the same process) does not wait for it.
    const events: TrainEvent[] = [];
    for await (const e of a.train(spec("queue-short", 3), [{ inputs: { x }, labels: y }])) events.push(e);
    assert.equal(events.at(-1)?.type, "state");
    assert.equal((events.at(-1) as { state: string }).state, "succeeded");
    assert.ok(events.some((e) => e.type === "state" && /on any replica/.test(e.message)), "it went to the shared queue");
    assert.ok(!events.some((e) => e.type === "resumed"), "a job taken from the queue starts; it does not resume");
    assert.equal((await b.jobs.get(longJob)).state, "running", "it finished while the first job still trained");
    await b.jobs.cancel(longJob);
    await long.catch(() => undefined);
  });

  it("a replica killed mid-job: another takes the job over from its checkpoint and finishes it", LIMIT, async () => {
    // Replicas: a fourth one runs the job and is killed. Pool: the process that took the job (its log says) is killed.
    const victim = mode === "replicas" ? clients[await startReplica()]! : clients[0]!;
    let jobId = "";
    for await (const e of victim.train(spec("takeover", 1500), [{ inputs: { x }, labels: y }])) {
      jobId = e.jobId;
      if (e.type === "checkpoint") break;
    }
    const killedAt = Date.now();
    if (mode === "replicas") replicas.at(-1)!.child.kill("SIGKILL");
    else {
      const accepted = poolLog.map((l) => JSON.parse(l) as { pid: number; job?: string; msg: string }).find((e) => e.job === jobId && e.msg.includes("accepted"));
      const children = execFileSync("pgrep", ["-P", String(pool!.child.pid)]).toString().trim().split("\n").map(Number);
      assert.ok(accepted && children.includes(accepted.pid), "a serving process of the pool accepted the job");
      process.kill(accepted.pid, "SIGKILL");
      // Node's cluster module loses a connection it hands to a process at the moment that process dies (the
      // client then waits out its connect timeout): let the primary see the death before the next call.
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const watcher = clients[1]!;
    // The rest of the job's 1,500 epochs takes ~9 s on a slow 2-core machine: what is checked is that it
    // finishes elsewhere (and, below, from a checkpoint), not how fast.
    await until(async () => (await watcher.jobs.get(jobId)).state === "succeeded", "the job finishes elsewhere", 60_000);
    const doneAfter = Date.now() - killedAt;
    const events: TrainEvent[] = [];
    for await (const e of watcher.jobs.watch(jobId)) events.push(e);
    const resumed = events.find((e) => e.type === "resumed");
    assert.ok(resumed && resumed.type === "resumed" && resumed.fromStep > 0, "resumed from a checkpoint, not from scratch");
    assert.equal((await clients[2]!.jobs.get(jobId)).state, "succeeded");
    const resumedAfter = resumed.time.getTime() - killedAt;
    console.log(`# takeover (${mode}): the job resumed ${resumedAfter} ms after kill -9 (lease ${LEASE_MS} ms) and finished ${doneAfter} ms after it`);
  });

  it("a key created through A works on C; revoked through A, C refuses it within a second and ends its open stream", LIMIT, async () => {
    const created = await adminCall<{ token: string; key: { id: string } }>(addressOf(0), "createKey", { tenant: "acme", roles: ["predict", "train"], name: "replicas", expiresInSeconds: 0n });
    const acme = createClient({ address: addressOf(2), apiKey: created.token, retry: { maxAttempts: 1 }, channelOptions: own });
    try {
      const acceptedAfter = await until(async () => (await acme.jobs.list(), true), "C accepts the new key");
      // An open stream of that key on C: a Train call whose data never comes.
      const stop = new AbortController();
      const never = (async function* () {
        await new Promise((resolve) => stop.signal.addEventListener("abort", resolve));
      })();
      const training = (async () => {
        for await (const e of acme.train(spec("acme-wait", 1), never)) void e;
      })().then(() => "ended OK", (e: { code?: number }) => e.code);
      await until(async () => (await clients[2]!.jobs.list()).some((j) => j.model === "acme-wait"), "the Train stream's job is listed");
      await adminCall(addressOf(0), "revokeKey", { id: created.key.id });
      const refusedAfter = await until(async () => {
        try {
          await acme.jobs.list();
          return false;
        } catch (e) {
          return (e as { code?: number }).code === status.UNAUTHENTICATED;
        }
      }, "C refuses the revoked key");
      const streamEnd = await Promise.race([training, new Promise((resolve) => setTimeout(() => resolve("still open after 2 s"), 2000))]);
      stop.abort();
      assert.equal(streamEnd, status.UNAUTHENTICATED, "the open Train stream of the revoked key on C ended");
      assert.ok(acceptedAfter < 1000, `C accepted the new key after ${acceptedAfter} ms`);
      assert.ok(refusedAfter < 1000, `C refused the revoked key after ${refusedAfter} ms`);
      if (mode === "replicas") {
        // The audit trail of every replica is in the one database (written once a second).
        await until(async () => {
          const pgc = new pg.Client({ connectionString: dbUrl });
          await pgc.connect();
          try {
            const rows = (await pgc.query<{ replica: string; action: string; outcome: string }>(`SELECT replica, action, outcome FROM audit_events`)).rows;
            const madeOnA = rows.find((r) => r.outcome === "allowed" && /CreateKey/i.test(r.action));
            const deniedElsewhere = rows.find((r) => r.outcome === "denied" && r.replica !== madeOnA?.replica);
            return Boolean(madeOnA && deniedElsewhere);
          } finally {
            await pgc.end();
          }
        }, "the audit entries of two replicas are in the database");
      }
      console.log(`# key propagation (${mode}): a new key accepted by another replica after ${acceptedAfter} ms; a revocation refused there after ${refusedAfter} ms`);
    } finally {
      acme.close();
    }
  });

  it("a version published through A is served by C; an unload through B and a load through C reach every replica", LIMIT, async () => {
    const [a, b, c] = clients as [AiaasClient, AiaasClient, AiaasClient];
    for await (const e of a.train(spec("published", 3), [{ inputs: { x }, labels: y }])) void e;
    const doneAt = Date.now();
    const one = Tensor.float32([1, 8], Float32Array.from({ length: 8 }, (_, i) => i / 8));
    const servedAfter = await until(async () => (await c.predict("published", { x: one })).version === "1", "C serves the version A published");
    const stateOn = async (client: AiaasClient): Promise<string> => (await client.models.get("published")).state;
    await b.models.unload("published");
    const unloadedAfter = await until(async () => (await stateOn(a)) === "unloaded" && (await stateOn(c)) === "unloaded", "A and C unload it too");
    await assert.rejects(c.predict("published", { x: one }));
    await c.models.load("published");
    const loadedAfter = await until(async () => (await stateOn(a)) === "ready" && (await stateOn(b)) === "ready", "A and B load it again");
    const names = await Promise.all(clients.slice(0, 3).map(async (k) => (await k.models.list()).map((m) => `${m.name}:${m.state}`).sort().join(",")));
    assert.equal(new Set(names).size, 1, `ListModels agrees: ${names.join(" | ")}`);
    console.log(`# model control (${mode}): published version served by another replica ${servedAfter} ms after the job ended (${Date.now() - doneAt} ms in all); unload reached the others after ${unloadedAfter} ms, load after ${loadedAfter} ms`);
  });

  it("a tenant's rate limit holds in total across the processes", LIMIT, async () => {
    // Replicas: one SDK client with the three addresses (round_robin). Pool: three connections to its one port.
    const metered =
      mode === "replicas"
        ? [createClient({ addresses: [0, 1, 2].map(addressOf), apiKey: meteredKey, retry: { maxAttempts: 1 } })]
        : [0, 1, 2].map((i) => createClient({ address: addressOf(i), apiKey: meteredKey, retry: { maxAttempts: 1 }, channelOptions: own }));
    try {
      const seconds = 4;
      const start = Date.now();
      const end = start + seconds * 1000;
      let granted = 0;
      let refused = 0;
      await Promise.all(Array.from({ length: 12 }, async (_, i) => {
        const client = metered[i % metered.length]!;
        while (Date.now() < end) {
          try {
            await client.models.list();
            granted++;
          } catch (e) {
            if ((e as { code?: number }).code !== status.RESOURCE_EXHAUSTED) throw e;
            refused++;
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
        }
      }));
      const elapsed = (Date.now() - start) / 1000;
      const allowed = BURST + RATE * elapsed;
      const ratio = granted / allowed;
      console.log(`# cluster-wide rate (${mode}): ${granted} granted of ${granted + refused} over ${elapsed.toFixed(2)} s at ${RATE}/s (burst ${BURST}) through 3 connections: granted ÷ limit = ${ratio.toFixed(3)}`);
      assert.ok(refused > granted, "the load was well over the limit");
      assert.ok(ratio > 0.9 && ratio < 1.1, `granted ÷ limit ${ratio.toFixed(3)} is within 10%`);
    } finally {
      for (const c of metered) c.close();
    }
  });

  /** An Admin RPC with the bootstrap admin key (the SDK has no Admin API). */
  function adminCall<T = unknown>(address: string, method: "createKey" | "revokeKey", request: object): Promise<T> {
    const client = new AdminClient(address, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set("authorization", `Bearer ${adminKey}`);
    return new Promise<T>((resolve, reject) => {
      (client[method] as unknown as (r: object, m: Metadata, cb: (e: Error | null, v: T) => void) => void).call(client, request, metadata, (error, value) => {
        client.close();
        if (error) reject(error);
        else resolve(value);
      });
    });
  }
});
}

/** Milliseconds until `check` holds (polled every 10 ms; fails after `limitMs`, 10 s unless said). */
async function until(check: () => Promise<boolean>, what = "the condition", limitMs = 10_000): Promise<number> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    const ok = await check().catch((error: unknown) => ((last = error), false));
    if (ok) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`${what} did not hold within ${limitMs / 1000} s${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
