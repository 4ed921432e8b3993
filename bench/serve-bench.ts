// `npm run bench`: first the server's own CPU per request (cpu-table.ts: server, echo, ONNX Runtime, and the
// overhead left), then how close the server comes to ONNX Runtime in-process (the compute limit) and to a
// plain grpc-js echo server (the transport limit), unary and streaming, batching on and off. Every ratio is
// taken within one run; each figure is the median of --rounds rounds. Writes bench/results/serve.json.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { credentials, Client } from "@grpc/grpc-js";
import ort from "onnxruntime-node";
import { InferenceClient, ModelsClient, type GetModelResponse } from "@aiaas/sdk/gen";
import { ECHO_ARGV, echoAddress } from "./bench-targets.js";
import { h2load, streamLoad, unaryCaller, unaryLoad, type LoadResult } from "./load.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { exitOf, startChild } from "./start-child.js";
import { benchDatabase } from "./pool-database.js";
import { cpuTable } from "./cpu-table.js";
import { httpPortOf, median, modelCounters, requestCodes } from "./stats.js";
import { machine } from "./machine.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1,16,64,256" },
    "cpu-rounds": { type: "string", default: "5" },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const levels = args.concurrency!.split(",").map(Number);
const hasH2load = (() => {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const work = await mkdtemp(join(tmpdir(), "aiaas-bench-"));
const fixtures = await writeServeFixtures(work);
const { repo, models, cnnRequest, nobatchRequest, payloads, random } = fixtures;


// --- the compute limit: ONNX Runtime in this process ----------------------------------------------------
async function inProcess(threads: number, batch: number): Promise<number> {
  const session = await ort.InferenceSession.create(models.cnn.bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  const x = new ort.Tensor("float32", Float32Array.from({ length: batch * 784 }, () => random()), [batch, 1, 28, 28]);
  for (let i = 0; i < 3; i++) await session.run({ image: x });
  let samples = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await session.run({ image: x });
    samples += batch;
  }
  const rate = samples / ((performance.now() - start) / 1000);
  await session.release();
  return rate;
}

type Row = { name: string; results: Array<LoadResult & { meanBatch: number }> };
const rows = new Map<string, Row>();
const record = (name: string, result: LoadResult & { meanBatch: number }): void => {
  const row = rows.get(name) ?? { name, results: [] };
  row.results.push(result);
  rows.set(name, row);
  process.stderr.write(`  ${name.padEnd(44)} ${result.perSecond.toFixed(0).padStart(8)}/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  batch ${result.meanBatch.toFixed(1)}${result.errors ? `  errors ${result.errors}` : ""}\n`);
};

const ortRates: Record<string, number[]> = {};
process.stderr.write(`in-process ONNX Runtime (mnist-cnn), ${seconds}s each\n`);
for (let round = 0; round < rounds; round++) {
  for (const threads of [1, 2]) {
    for (const batch of [1, 64]) {
      const key = `ort ${threads}t batch ${batch}`;
      (ortRates[key] ??= []).push(await inProcess(threads, batch));
      process.stderr.write(`  ${key.padEnd(44)} ${ortRates[key].at(-1)!.toFixed(0).padStart(8)} samples/s\n`);
    }
  }
}

const server = await startChild(
  // The young generation the Dockerfile sets, and the operations port on as `aiaas serve` has it by default
  // (so the metrics are recorded, as users run it).
  ["--max-semi-space-size=32", "server/dist/bin/aiaas.js", "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "0"],
  (e) => e.address as string | undefined,
);
const echo = await startChild([...ECHO_ARGV], echoAddress);
// The same server as two processes on one port (`--processes 2`, sharing state through PostgreSQL), when h2load
// and a PostgreSQL are here: h2load's connections are spread over the processes by the primary.
const poolDb = hasH2load ? await benchDatabase() : undefined;
const pool = poolDb
  ? await startChild(
      ["--max-semi-space-size=32", "server/dist/bin/aiaas.js", "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--processes", "2", "--database-url", poolDb.url, "--state-dir", join(work, "pool-state")],
      (e) => (typeof e.msg === "string" && e.msg.includes("with 2 processes") ? (e.address as string) : undefined),
    )
  : undefined;
const channelOptions = { "grpc.max_receive_message_length": 64 << 20 };
const inference = new InferenceClient(server.value, credentials.createInsecure(), channelOptions);
const modelsClient = new ModelsClient(server.value, credentials.createInsecure());
const echoClient = new Client(echo.value, credentials.createInsecure());
const predictClient = new Client(server.value, credentials.createInsecure(), channelOptions);

const counters = (model: string) => modelCounters(modelsClient, model);
/** Runs one load against `model` and records it with the mean batch size the server formed meanwhile. */
const measure = async (name: string, model: string | undefined, load: () => Promise<LoadResult>): Promise<void> => {
  const before = model ? await counters(model) : undefined;
  const result = await load();
  const after = model ? await counters(model) : undefined;
  const meanBatch = before && after ? (after.rows - before.rows) / Math.max(1, after.batches - before.batches) : NaN;
  record(name, { ...result, meanBatch });
};

try {
  const cpu = hasH2load
    ? await cpuTable({
        server: { pid: server.child.pid!, address: server.value },
        echo: { pid: echo.child.pid!, address: echo.value },
        models: modelsClient,
        work,
        modelBytes: Object.fromEntries(Object.entries(models).map(([name, m]) => [name, m.bytes])),
        inputShape: fixtures.inputShapes,
        seconds,
        rounds: Number(args["cpu-rounds"]),
        log: (line) => process.stderr.write(`${line}\n`),
      })
    : undefined;
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`round ${round}/${rounds}, ${seconds}s per point\n`);
    const predictPath = "/aiaas.v1.Inference/Predict";
    await measure("echo grpc-js unary c=1", undefined, () => unaryLoad(unaryCaller(echoClient, "/bench.Echo/Echo", payloads.cnn), 1, seconds));
    for (const c of levels) {
      await measure(`cnn grpc-js unary c=${c}`, "cnn", () => unaryLoad(unaryCaller(predictClient, predictPath, payloads.cnn), c, seconds));
      await measure(`cnn grpc-js stream in-flight=${c}`, "cnn", () => streamLoad(inference, cnnRequest, c, seconds));
    }
    await measure("cnn-nobatch grpc-js stream in-flight=256", "cnn-nobatch", () => streamLoad(inference, nobatchRequest, 256, seconds));
    if (hasH2load) {
      const log = join(work, "h2load.log");
      const url = (path: string): string => `http://${server.value}${path}`;
      for (const c of [1, 256]) {
        await measure(`echo h2load c=${c}`, undefined, () => h2load(`http://${echo.value}/bench.Echo/Echo`, join(work, "cnn.frame"), c, seconds, log));
      }
      for (const c of levels) {
        await measure(`cnn h2load unary c=${c}`, "cnn", () => h2load(url(predictPath), join(work, "cnn.frame"), c, seconds, log));
        await measure(`cnn-nobatch h2load unary c=${c}`, "cnn-nobatch", () => h2load(url(predictPath), join(work, "cnn-nobatch.frame"), c, seconds, log));
      }
      await measure("cnn h2load OIP ModelInfer c=256", "cnn", () => h2load(url("/inference.GRPCInferenceService/ModelInfer"), join(work, "cnn-oip.frame"), 256, seconds, log));
      // 4 streams of 64 messages in flight: ~256 requests; throughput counted in messages.
      const streamed = async (model: string): Promise<LoadResult> => {
        const r = await h2load(url("/aiaas.v1.Inference/PredictStream"), join(work, `${model}.x64.frame`), 4, seconds, log);
        return { ...r, perSecond: r.perSecond * 64 };
      };
      await measure("cnn h2load stream 4x64 in flight", "cnn", () => streamed("cnn"));
      await measure("cnn-nobatch h2load stream 4x64 in flight", "cnn-nobatch", () => streamed("cnn-nobatch"));
      await measure("tiny h2load unary c=256", "tiny", () => h2load(url(predictPath), join(work, "tiny.frame"), 256, seconds, log));
      await measure("tiny-nobatch h2load unary c=256", "tiny-nobatch", () => h2load(url(predictPath), join(work, "tiny-nobatch.frame"), 256, seconds, log));
      await measure("tiny h2load stream 4x64 in flight", "tiny", () => streamed("tiny"));
      if (pool) {
        // Model counters are per process: the pool's batch sizes are not shown.
        const poolUrl = `http://${pool.value}${predictPath}`;
        await measure("2 processes: cnn h2load unary c=256", undefined, () => h2load(poolUrl, join(work, "cnn.frame"), 256, seconds, log));
        await measure("2 processes: tiny h2load unary c=256", undefined, () => h2load(poolUrl, join(work, "tiny.frame"), 256, seconds, log));
      }
    }
  }

  // h2load counts HTTP 200 as success; gRPC errors ride in trailers, so count them from the servers' own
  // metrics, by code: a code no load generator explains (anything but OK, its deadline, or a call cut off
  // as a timed load stops) fails the run.
  const codes: Record<string, { byCode: Record<string, number>; unexpected: Record<string, number> }> = {};
  for (const [name, child] of [["server", server], ["2 processes", pool]] as const) {
    const port = child && httpPortOf(child.entries);
    if (!port) continue;
    codes[name] = await requestCodes(port);
    process.stderr.write(`${name}: requests by code ${JSON.stringify(codes[name].byCode)}\n`);
  }
  const failures: Record<string, number> = {};
  for (const name of Object.keys(models)) {
    const res = await new Promise<GetModelResponse>((resolve, reject) => modelsClient.getModel({ name }, (e, r) => (e ? reject(e) : resolve(r))));
    const stats = res.model!.versions[0].statistics!;
    failures[name] = Number(stats.failureCount);
    const mean = Number(stats.inferenceCount) / Math.max(1, Number(stats.batchCount));
    process.stderr.write(`${name}: ${stats.successCount} ok, ${stats.failureCount} failed, mean batch ${mean.toFixed(1)} rows\n`);
  }

  const ort2t64 = median(ortRates["ort 2t batch 64"]);
  const med = (name: string, pick: (r: LoadResult & { meanBatch: number }) => number): number => (rows.has(name) ? median(rows.get(name)!.results.map(pick)) : NaN);
  const rate = (name: string): number => med(name, (r) => r.perSecond);
  const ratios = {
    "cnn unary, h2load c=256 / in-process 2t batch-64 (target >= 0.55)": rate("cnn h2load unary c=256") / ort2t64,
    "cnn stream, h2load 4x64 / in-process 2t batch-64 (target >= 0.75)": rate("cnn h2load stream 4x64 in flight") / ort2t64,
    "cnn stream, grpc-js client in-flight=256 / in-process 2t batch-64": rate("cnn grpc-js stream in-flight=256") / ort2t64,
    "batching on / off, h2load unary c=256 (target >= 4)": rate("cnn h2load unary c=256") / rate("cnn-nobatch h2load unary c=256"),
    "batching on / off, tiny (Gemm 784→10), h2load unary c=256": rate("tiny h2load unary c=256") / rate("tiny-nobatch h2load unary c=256"),
    "batching on / off, h2load stream 4x64": rate("cnn h2load stream 4x64 in flight") / rate("cnn-nobatch h2load stream 4x64 in flight"),
    "cnn unary h2load c=256 / echo h2load c=256 (transport share)": rate("cnn h2load unary c=256") / rate("echo h2load c=256"),
    "OIP ModelInfer / aiaas.v1 Predict, h2load c=256 (target >= 0.95)": rate("cnn h2load OIP ModelInfer c=256") / rate("cnn h2load unary c=256"),
    "c=1 p50 minus echo p50, h2load, ms (target <= 0.1)": med("cnn h2load unary c=1", (r) => r.p50Ms) - med("echo h2load c=1", (r) => r.p50Ms),
    "c=1 p50 minus echo p50, grpc-js client, ms": med("cnn grpc-js unary c=1", (r) => r.p50Ms) - med("echo grpc-js unary c=1", (r) => r.p50Ms),
    "2 processes / 1 process, cnn h2load unary c=256": rate("2 processes: cnn h2load unary c=256") / rate("cnn h2load unary c=256"),
    "2 processes / 1 process, tiny h2load unary c=256": rate("2 processes: tiny h2load unary c=256") / rate("tiny h2load unary c=256"),
  };

  const lines: string[] = [];
  if (cpu) lines.push(cpu.markdown, "");
  lines.push(`| measurement (median of ${rounds}, ${seconds}s each) | samples/s | p50 ms | p99 ms | mean batch |`, "|---|---:|---:|---:|---:|");
  for (const [key, values] of Object.entries(ortRates)) lines.push(`| in-process ${key} | ${median(values).toFixed(0)} | | | |`);
  for (const row of rows.values()) {
    const batch = med(row.name, (r) => r.meanBatch);
    lines.push(`| ${row.name} | ${med(row.name, (r) => r.perSecond).toFixed(0)} | ${med(row.name, (r) => r.p50Ms).toFixed(2)} | ${med(row.name, (r) => r.p99Ms).toFixed(2)} | ${Number.isNaN(batch) ? "" : batch.toFixed(1)} |`);
  }
  lines.push("", "| ratio | value |", "|---|---:|");
  for (const [key, value] of Object.entries(ratios)) lines.push(`| ${key} | ${value.toFixed(2)} |`);
  if (!hasH2load) lines.push("", "h2load not found (apt-get install nghttp2-client): native-load rows skipped.");
  else if (!pool) lines.push("", "no PostgreSQL for `--processes 2` (set AIAAS_BENCH_PG_URL): the 2-process rows are skipped.");
  console.log(lines.join("\n"));
  await mkdir("bench/results", { recursive: true });
  await writeFile(
    "bench/results/serve.json",
    JSON.stringify({ date: new Date().toISOString(), machine: machine(), seconds, rounds, cpu: cpu && { table: cpu.markdown, points: cpu.raw }, inProcess: ortRates, rows: [...rows.values()], ratios, failures, codes }, null, 2),
  );
  const failed = Object.entries(codes).filter(([, c]) => Object.keys(c.unexpected).length > 0);
  for (const [name, c] of failed) process.stderr.write(`FAILED: ${name} answered requests with ${JSON.stringify(c.unexpected)}; the figures above include failed calls\n`);
  if (failed.length > 0) process.exitCode = 1;
} finally {
  inference.close();
  modelsClient.close();
  echoClient.close();
  predictClient.close();
  echo.child.kill("SIGTERM");
  server.child.kill("SIGTERM");
  pool?.child.kill("SIGTERM");
  await exitOf(server.child);
  if (pool) await exitOf(pool.child);
  await poolDb?.drop();
  await rm(work, { recursive: true, force: true });
}
