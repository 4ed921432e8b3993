// `npm run bench:fairness`: tenant B's latency on a shared public model (mnist-cnn; by default batches of 8
// on one session, BENCH_BATCH and BENCH_SESSIONS change it), alone and while tenant A floods the same model
// (BENCH_FLOOD calls in flight), with B as its own tenant (the batcher shares the queue fairly) and, for
// contrast, with B's requests under A's tenant (one FIFO). The server runs as its own process; medians of
// rounds. Writes the raw results to bench/results/fairness-<time>.json.
import { spawn, type ChildProcess } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, Tensor, type AiaasClient } from "@aiaas/sdk";
import { KeyStore } from "../server/src/auth/index.js";
import { loadMnist } from "../scripts/mnist-data.js";
import { machine } from "./machine.js";

// The servers this bench starts keep no state: it measures serving, not durable jobs.
process.env.AIAAS_STATE_DIR ??= "none";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const FLOOD = Number(process.env.BENCH_FLOOD ?? 1024); // A's calls in flight
const BATCH = Number(process.env.BENCH_BATCH ?? 8); // the model's max_batch_size
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 1); // its instance_count
const root = new URL("..", import.meta.url).pathname;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

const dir = await mkdtemp(join(tmpdir(), "aiaas-fairness-"));
await cp(join(root, "models", "mnist-cnn"), join(dir, "public", "mnist-cnn"), { recursive: true });
// Small batches on one session make the model, not the transport, the bottleneck: the queue grows deep
// under A's flood, which is where a FIFO makes B wait behind all of it.
await writeFile(join(dir, "public", "mnist-cnn", "config.json"), JSON.stringify({ max_batch_size: BATCH, instance_count: SESSIONS, max_queue_size: 8192 }));
const store = await KeyStore.open(join(dir, "keys.json"));
const limits = { requestsPerSecond: 1e6, burst: 1e6, maxInFlight: 10_000 };
const a = (await store.create({ tenant: "flooder", roles: ["predict"], limits })).token;
const aAgain = (await store.create({ tenant: "flooder", roles: ["predict"], limits })).token;
const b = (await store.create({ tenant: "steady", roles: ["predict"], limits })).token;

const server: ChildProcess = spawn(
  process.execPath,
  ["server/dist/bin/aiaas.js", "serve", "--models", join(dir, "public"), "--keys", join(dir, "keys.json"), "--port", "0", "--http-port", "-1", "--host", "127.0.0.1", "--providers", "cpu"],
  { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
);
const address = await new Promise<string>((resolve, reject) => {
  let out = "";
  server.stdout!.on("data", (chunk: Buffer) => {
    out += chunk;
    const m = /aiaas listening on ([^"\s]+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  server.once("exit", (code) => reject(new Error(`server exited (${code})`)));
});

const { test } = loadMnist();
const image = Tensor.float32([1, 1, 28, 28], test.images.subarray(0, 784));

/** B: BENCH_B_INFLIGHT calls in flight (default 1) for SECONDS; returns each call's latency in ms. */
async function steady(client: AiaasClient): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: Number(process.env.BENCH_B_INFLIGHT ?? 1) }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await client.predict("mnist-cnn", { image });
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies;
}

/** Starts A's flood in its own process; the returned stop ends it. */
async function flood(token: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/fairness-flood.ts", address, token, String(FLOOD)], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise((res) => setTimeout(res, 1500)); // its queue fills
  return async () => {
    child.stdin!.end();
    await new Promise((res) => child.once("exit", res));
  };
}

const clientB = createClient({ address, apiKey: b });
const clientBasA = createClient({ address, apiKey: aAgain });
try {
  await steady(clientB); // warm-up
  const rows: Record<string, number[][]> = { alone: [], fair: [], fifo: [] };
  for (let r = 0; r < ROUNDS; r++) {
    rows.alone!.push(await steady(clientB));
    for (const [name, victim] of [["fair", clientB], ["fifo", clientBasA]] as const) {
      const stop = await flood(a);
      rows[name]!.push(await steady(victim));
      await stop();
    }
  }
  const p = (name: string, q: number): number => median(rows[name]!.map((l) => quantile(l, q)));
  console.log(`mnist-cnn (batches of ${BATCH}, ${SESSIONS} session(s)), 1 row per call; B: ${process.env.BENCH_B_INFLIGHT ?? 1} call(s) in flight for ${SECONDS} s; A: ${FLOOD} calls in flight from another process; ${ROUNDS} rounds, medians`);
  console.log("| B's latency | p50 ms | p99 ms | p99 / alone |");
  console.log("|---|---:|---:|---:|");
  for (const [name, label] of [["alone", "B alone"], ["fair", "B as its own tenant, A flooding"], ["fifo", "B's calls under A's tenant (one FIFO), A flooding"]] as const) {
    console.log(`| ${label} | ${p(name, 0.5).toFixed(2)} | ${p(name, 0.99).toFixed(2)} | ${(p(name, 0.99) / p("alone", 0.99)).toFixed(2)} |`);
  }
  const perRound = Object.fromEntries(Object.entries(rows).map(([name, rounds]) => [name, rounds.map((l) => ({ calls: l.length, p50: quantile(l, 0.5), p99: quantile(l, 0.99) }))]));
  await mkdir(join(root, "bench", "results"), { recursive: true });
  const out = join(root, "bench", "results", `fairness-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  await writeFile(out, `${JSON.stringify({ machine: machine(), batch: BATCH, sessions: SESSIONS, flood: FLOOD, seconds: SECONDS, rounds: ROUNDS, bInFlight: Number(process.env.BENCH_B_INFLIGHT ?? 1), perRound }, null, 1)}\n`);
  console.log(`raw results: ${out}`);
} finally {
  clientB.close();
  clientBasA.close();
  server.kill("SIGTERM");
  await new Promise((res) => server.once("exit", res));
  await rm(dir, { recursive: true, force: true });
}
