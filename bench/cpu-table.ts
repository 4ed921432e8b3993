// The server's own CPU per request: for unary Predict, PredictStream and ModelInfer under h2load, the server
// process's CPU time per request answered (main thread and other threads apart), beside a plain grpc-js echo
// server's on the same request bytes (the transport's share) and ONNX Runtime's in-process CPU per sample
// at the batch size the server formed (the model's share). What is left is the server's overhead.
import { join } from "node:path";
import ort from "onnxruntime-node";
import type { ModelsClient } from "@aiaas/sdk/gen";
import { h2load, type LoadResult } from "./load.js";
import { cpuSince, cpuTimes, type CpuTimes } from "./process-cpu.js";
import { median, modelCounters } from "./stats.js";

export interface CpuTarget {
  readonly pid: number;
  /** host:port */
  readonly address: string;
}

export interface CpuTableOptions {
  readonly server: CpuTarget;
  readonly echo: CpuTarget;
  readonly models: ModelsClient;
  /** Folder holding the request frames (serve-fixtures). */
  readonly work: string;
  /** The served models' bytes, for ONNX Runtime in-process. */
  readonly modelBytes: Readonly<Record<string, Uint8Array>>;
  readonly inputShape: Readonly<Record<string, readonly number[]>>;
  readonly seconds: number;
  readonly rounds: number;
  readonly log: (line: string) => void;
  /** Only the points whose names contain one of these words (all points when empty). */
  readonly only?: readonly string[];
}

/** One measured run: CPU in µs per request (per message for streams). */
export interface CpuSample {
  readonly perSecond: number;
  readonly totalUs: number;
  readonly mainUs: number;
  readonly otherUs: number;
  readonly p50Ms: number;
  readonly meanBatch: number;
  /** Share of the batches that ran on the server's main thread (the idle path), 0 to 1. */
  readonly inlineShare: number;
}

interface Point {
  readonly name: string;
  readonly model: string;
  readonly path: string;
  /** Frame file name in `work`. */
  readonly frame: string;
  readonly inflight: number;
  /** Messages per h2load request (64 for a stream body). */
  readonly messages: number;
}

const PREDICT = "/aiaas.v1.Inference/Predict";
const POINTS: readonly Point[] = [
  { name: "cnn Predict unary c=256", model: "cnn", path: PREDICT, frame: "cnn.frame", inflight: 256, messages: 1 },
  { name: "cnn PredictStream 4x64", model: "cnn", path: "/aiaas.v1.Inference/PredictStream", frame: "cnn.x64.frame", inflight: 4, messages: 64 },
  { name: "cnn ModelInfer c=256", model: "cnn", path: "/inference.GRPCInferenceService/ModelInfer", frame: "cnn-oip.frame", inflight: 256, messages: 1 },
  { name: "tiny Predict unary c=256", model: "tiny", path: PREDICT, frame: "tiny.frame", inflight: 256, messages: 1 },
  { name: "tiny PredictStream 4x64", model: "tiny", path: "/aiaas.v1.Inference/PredictStream", frame: "tiny.x64.frame", inflight: 4, messages: 64 },
  { name: "cnn Predict unary c=1", model: "cnn", path: PREDICT, frame: "cnn.frame", inflight: 1, messages: 1 },
  { name: "tiny Predict unary c=1", model: "tiny", path: PREDICT, frame: "tiny.frame", inflight: 1, messages: 1 },
];

const spread = (xs: readonly number[], digits = 0): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

/**
 * h2load against one target with its CPU measured: a 1 s run first (JIT, connections), then the measured run
 * without warm-up, so the CPU and the request count cover the same period. `requests` counts messages.
 */
export async function measureCpu(
  target: CpuTarget,
  path: string,
  framePath: string,
  inflight: number,
  messages: number,
  seconds: number,
  logFile: string,
): Promise<{ load: LoadResult; requests: number; cpu: CpuTimes }> {
  const url = `http://${target.address}${path}`;
  await h2load(url, framePath, inflight, 1, logFile, false);
  const before = cpuTimes(target.pid);
  const load = await h2load(url, framePath, inflight, seconds, logFile, false);
  const cpu = cpuSince(target.pid, before);
  return { load, requests: (load.succeeded ?? 0) * messages, cpu };
}

const measured = (target: CpuTarget, point: Point, path: string, frame: string, o: CpuTableOptions) =>
  measureCpu(target, path, join(o.work, frame), point.inflight, point.messages, o.seconds, join(o.work, "cpu-h2load.log"));

function sample(load: LoadResult, requests: number, cpu: { total: number; main: number }, meanBatch: number, inlineShare: number, messages: number): CpuSample {
  const us = (seconds: number): number => (seconds / Math.max(1, requests)) * 1e6;
  return { perSecond: load.perSecond * messages, totalUs: us(cpu.total), mainUs: us(cpu.main), otherUs: us(cpu.total - cpu.main), p50Ms: load.p50Ms, meanBatch, inlineShare };
}

/** ONNX Runtime in this process, one thread, at `batch`: CPU µs per sample (all threads of this process). */
export async function ortCpuPerSample(bytes: Uint8Array, shape: readonly number[], batch: number, seconds: number): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: "0" } } } });
  const inputName = session.inputNames[0]!;
  const size = shape.slice(1).reduce((a, b) => a * b, 1);
  const x = new ort.Tensor("float32", Float32Array.from({ length: batch * size }, (_, i) => (i % 97) / 97), [batch, ...shape.slice(1)]);
  for (let i = 0; i < 5; i++) await session.run({ [inputName]: x });
  let samples = 0;
  const before = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await session.run({ [inputName]: x });
    samples += batch;
  }
  const used = process.cpuUsage(before);
  await session.release();
  return (used.user + used.system) / samples;
}

export interface CpuTableResult {
  readonly markdown: string;
  readonly raw: Record<string, { server: CpuSample[]; echo: CpuSample[]; ortUs: number[] }>;
}

/** Runs every point `rounds` times (server, then echo, alternating which goes first) and tabulates medians. */
export async function cpuTable(o: CpuTableOptions): Promise<CpuTableResult> {
  const raw: CpuTableResult["raw"] = {};
  // A JIT that is still compiling costs more than the request path itself (at c=1 after a few seconds,
  // V8's compiler threads took ~250 µs per request): both servers first take 10 s of load at 256 in flight.
  o.log("warming up the server and the echo server (10 s each)");
  const log = join(o.work, "cpu-h2load.log");
  await h2load(`http://${o.server.address}${PREDICT}`, join(o.work, "cnn.frame"), 256, 10, log, false);
  await h2load(`http://${o.echo.address}/bench.Echo/Echo`, join(o.work, "cnn.frame"), 256, 10, log, false);
  for (let round = 0; round < o.rounds; round++) {
    o.log(`CPU per request, round ${round + 1}/${o.rounds}, ${o.seconds}s per point`);
    for (const point of POINTS) {
      if (o.only?.length && !o.only.some((word) => point.name.toLowerCase().includes(word.toLowerCase()))) continue;
      const entry = (raw[point.name] ??= { server: [], echo: [], ortUs: [] });
      const echoPath = point.messages > 1 ? "/bench.Echo/EchoStream" : "/bench.Echo/Echo";
      const runServer = async (): Promise<void> => {
        const before = await modelCounters(o.models, point.model);
        const r = await measured(o.server, point, point.path, point.frame, o);
        const after = await modelCounters(o.models, point.model);
        const batches = Math.max(1, after.batches - before.batches);
        const meanBatch = (after.rows - before.rows) / batches;
        const inlineShare = (after.inlineBatches - before.inlineBatches) / batches;
        if (after.failures > before.failures) o.log(`  ${point.name}: the server counted ${after.failures - before.failures} failed requests (h2load cancels those in flight when its time is up)`);
        entry.server.push(sample(r.load, r.requests, r.cpu, meanBatch, inlineShare, point.messages));
      };
      const runEcho = async (): Promise<void> => {
        const r = await measured(o.echo, point, echoPath, point.frame, o);
        entry.echo.push(sample(r.load, r.requests, r.cpu, NaN, 0, point.messages));
      };
      for (const run of round % 2 === 0 ? [runServer, runEcho] : [runEcho, runServer]) await run();
      const batch = Math.max(1, Math.round(entry.server.at(-1)!.meanBatch));
      entry.ortUs.push(await ortCpuPerSample(o.modelBytes[point.model]!, o.inputShape[point.model]!, batch, Math.min(2, o.seconds)));
      const s = entry.server.at(-1)!;
      const e = entry.echo.at(-1)!;
      o.log(`  ${point.name.padEnd(26)} server ${s.totalUs.toFixed(1)} µs (main ${s.mainUs.toFixed(1)})  echo ${e.totalUs.toFixed(1)} µs  ORT ${entry.ortUs.at(-1)!.toFixed(1)} µs at batch ${batch}  ${s.perSecond.toFixed(0)}/s`);
    }
  }
  return { markdown: tabulate(raw, o), raw };
}

function tabulate(raw: CpuTableResult["raw"], o: CpuTableOptions): string {
  const lines = [
    `| point (median of ${o.rounds}, ${o.seconds}s each; µs of CPU per request) | server | main thread | other threads | echo | ORT per sample | overhead | overhead main | overhead other | overhead per round | server req/s | mean batch | batches inline |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
  ];
  for (const [name, { server, echo, ortUs }] of Object.entries(raw)) {
    // Per round: the server's CPU less the echo's (transport) and ORT's (model) of the same round. ORT's
    // share goes to the main thread for the batches that ran there (the idle path), else to the workers.
    const overhead = server.map((s, i) => s.totalUs - echo[i]!.totalUs - ortUs[i]!);
    const overheadMain = server.map((s, i) => s.mainUs - echo[i]!.totalUs - ortUs[i]! * s.inlineShare);
    const overheadOther = server.map((s, i) => s.otherUs - ortUs[i]! * (1 - s.inlineShare));
    const m = (xs: number[]): string => median(xs).toFixed(1);
    const inline = `${(median(server.map((s) => s.inlineShare)) * 100).toFixed(0)}%`;
    lines.push(
      `| ${name} | ${m(server.map((s) => s.totalUs))} | ${m(server.map((s) => s.mainUs))} | ${m(server.map((s) => s.otherUs))} | ${m(echo.map((s) => s.totalUs))} | ${m(ortUs)} | **${m(overhead)}** | ${m(overheadMain)} | ${m(overheadOther)} | ${spread(overhead, 0)} | ${median(server.map((s) => s.perSecond)).toFixed(0)} | ${median(server.map((s) => s.meanBatch)).toFixed(1)} | ${inline} |`,
    );
  }
  lines.push("");
  for (const model of ["cnn", "tiny"]) {
    const c1 = raw[`${model} Predict unary c=1`];
    if (!c1) continue;
    // ORT's CPU per sample at batch 1 on one thread is its run's wall time too: what no server can save.
    const gaps = c1.server.map((s, i) => s.p50Ms - c1.echo[i]!.p50Ms);
    const beyond = c1.server.map((s, i) => s.p50Ms - c1.echo[i]!.p50Ms - c1.ortUs[i]! / 1000);
    const ms = (xs: number[]): string => median(xs).toFixed(3);
    lines.push(
      `${model} c=1 p50: server ${ms(c1.server.map((s) => s.p50Ms))} ms, echo ${ms(c1.echo.map((s) => s.p50Ms))} ms, ORT's one-row run ${ms(c1.ortUs.map((u) => u / 1000))} ms; server − echo ${ms(gaps)} ms (per round ${gaps.map((g) => g.toFixed(3)).join(", ")}; target ≤ 0.1); server − echo − ORT ${ms(beyond)} ms`,
      "",
    );
  }
  return lines.join("\n").trimEnd();
}
