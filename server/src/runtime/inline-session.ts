// A model's ONNX Runtime session on the main thread. onnxruntime-node's run() blocks the thread that calls
// it, which is why serving keeps its sessions in workers; but on an idle server the worker round trip (waking
// the worker, then the main thread again) costs more than a small model's whole run. This session serves
// such runs where the request arrived. When it may run is the batcher's decision (batching/inline-lane.ts).
import { stat } from "node:fs/promises";
import type ort from "onnxruntime-node";
import { fromOrtTensor, toOrtTensor, zeroFeeds } from "./ort-tensors.js";
import type { RunResult } from "./session-instance.js";
import { sessionOptions, type RuntimeOptions } from "./session-options.js";
import { openSessionRunner, type SessionRunner } from "./session-runner.js";
import type { TransferTensor } from "./tensor-types.js";

/** Larger model files never get a main-thread session: loading one blocks the main thread meanwhile. */
export const INLINE_MAX_MODEL_BYTES = 16 << 20;

/** Probe runs at open; the fastest is the run time the lane budgets with (other loads may slow the rest). */
const PROBE_RUNS = 5;

export interface InlineSession {
  /** The fastest of the one-row probe runs at open, in µs (zeros in, after one unmeasured run). */
  readonly probeRunUs: number;
  /** Whether it runs on onnxruntime-node's native binding (else its public API, a turn of the event loop per run). */
  readonly nativeRun: boolean;
  /**
   * Runs on the calling thread, before it returns where onnxruntime-node's native binding is there (else after
   * the public API's setImmediate); feeds are not consumed.
   */
  run(feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult>;
  close(): Promise<void>;
}

/** Why a model gets no main-thread session, or undefined when it may have one. */
export async function inlineIneligibility(modelPath: string, provider: string): Promise<string | undefined> {
  if (provider !== "cpu") return `it runs on ${provider.toUpperCase()}`;
  const { size } = await stat(modelPath);
  if (size > INLINE_MAX_MODEL_BYTES) return `its file (${(size / 2 ** 20).toFixed(1)} MiB) is over ${INLINE_MAX_MODEL_BYTES / 2 ** 20} MiB`;
  return undefined;
}

/**
 * The probes of the process, one at a time: a probe's time is measured around onnxruntime-node's
 * setImmediate, so another model's probe run queued meanwhile counts in it. Loaded beside a slower model, the
 * seed CNN's probe measured 9.2 ms (the other's run) instead of ~0.1, over 4 times the default budget, and
 * its idle path was closed for good (the cause of an inline-lane.test.ts failure in a full run).
 */
let probing: Promise<unknown> = Promise.resolve();

/**
 * Opens the model on this thread with one intra-op thread (the run stays on the caller's thread) and times
 * it on one row of zeros shaped like `probeInputs` (variable dimensions as 1); two runs over `enoughUs` end
 * the probe early (the model will not fit). Throws if it cannot open or the probe fails; the caller then serves
 * from workers only.
 */
export async function openInlineSession(
  modelPath: string,
  options: RuntimeOptions,
  probeInputs: readonly { readonly name: string; readonly type: string; readonly dims: readonly number[] }[],
  enoughUs = Infinity,
): Promise<InlineSession> {
  const opened = await openSessionRunner(modelPath, sessionOptions("cpu", { ...options, intraOpThreads: 1, allowSpinning: false }));
  try {
    const turn = probing.then(() => probe(opened, zeroFeeds(probeInputs), enoughUs));
    probing = turn.catch(() => undefined);
    const probeRunUs = await turn;
    return { probeRunUs, nativeRun: opened.now, run: (feeds, outputs) => run(opened, feeds, outputs), close: async () => opened.release() };
  } catch (error) {
    await opened.release();
    throw error;
  }
}

/** The fastest of the timed one-row runs, after one unmeasured run, in µs. */
async function probe(runner: SessionRunner, feeds: Record<string, ort.Tensor>, enoughUs: number): Promise<number> {
  await runner.run(feeds, []);
  let fastest = Infinity;
  for (let i = 0; i < PROBE_RUNS; i++) {
    fastest = Math.min(fastest, await timedRun(runner, feeds));
    // Two runs both over it: the model itself is too slow, and each further run would block this thread as long.
    if (i >= 1 && fastest > enoughUs) break;
  }
  return fastest;
}

/**
 * One run's time in µs, from when ONNX Runtime starts it. The public session's run() waits for a setImmediate
 * first, and whatever else the main thread does before that turn (another version loading: a Worker spawned,
 * a model file read) is not the run's: timed from the call, a probe beside other versions' loads measured the
 * seed CNN over 4 ms twice in a row (~0.1 ms alone) and closed its idle path for good (an inline-lane.test.ts
 * failure in CI). Our immediate, queued just before onnxruntime-node's, runs right before it.
 */
async function timedRun(runner: SessionRunner, feeds: Record<string, ort.Tensor>): Promise<number> {
  const called = performance.now();
  if (runner.now) {
    runner.run(feeds, []);
    return (performance.now() - called) * 1000;
  }
  let started = 0;
  setImmediate(() => (started = performance.now()));
  await runner.run(feeds, []);
  return (performance.now() - (started || called)) * 1000;
}

async function run(runner: SessionRunner, feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult> {
  const started = performance.now();
  const inputs: Record<string, ort.Tensor> = {};
  for (const t of feeds) inputs[t.name] = toOrtTensor(t);
  const results = await runner.run(inputs, outputs);
  const runMs = performance.now() - started;
  const out: TransferTensor[] = [];
  for (const name in results) out.push(fromOrtTensor(name, results[name]!));
  return { outputs: out, runMs, inputs: feeds.map((f) => f.buffer) };
}
