// Entry point of a session worker thread: one ONNX Runtime session per thread, because onnxruntime-node's
// run() blocks the thread that calls it and the main thread must stay free for gRPC and batching.
import { workerData } from "node:worker_threads";
import type ort from "onnxruntime-node";
import { fromOrtTensor, toOrtTensor, zeroFeeds } from "./ort-tensors.js";
import { openWithFallback, type RuntimeOptions } from "./session-options.js";
import { openSessionRunner, type SessionRunner } from "./session-runner.js";
import type { TransferTensor } from "./tensor-types.js";
import { hangIfInjected, hostWorker } from "./worker-host.js";
import type { ValueSpec } from "./worker-protocol.js";

/** What a session worker is started with (its workerData). */
export interface SessionWorkerInit extends RuntimeOptions {
  readonly modelPath: string;
  readonly warmup: boolean;
}

/** What a session worker reports when ready. */
export interface SessionInfo {
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** Whether the session runs on onnxruntime-node's native binding (else its public API). */
  readonly nativeRun: boolean;
}

/** The payload of a "run" call, and its reply. */
export interface RunPayload {
  readonly feeds: readonly TransferTensor[];
  readonly outputs: readonly string[];
}
export interface RunReply {
  readonly outputs: readonly TransferTensor[];
  readonly runMs: number;
  /** The feed buffers, returned for reuse. */
  readonly inputs: readonly ArrayBuffer[];
}

async function run(session: SessionRunner, { feeds, outputs }: RunPayload): Promise<{ value: RunReply; transfer: ArrayBuffer[] }> {
  const started = performance.now();
  const inputs: Record<string, ort.Tensor> = {};
  for (const t of feeds) inputs[t.name] = toOrtTensor(t);
  hangIfInjected();
  const results = await session.run(inputs, outputs);
  const runMs = performance.now() - started;
  // ORT hands each output its own ArrayBuffer: transfer it rather than copy.
  const out = Object.entries(results).map(([name, tensor]) => fromOrtTensor(name, tensor));
  // Hand the input buffers back for reuse: allocating fresh ones per batch costs the main thread GC time.
  const returned = feeds.map((f) => f.buffer);
  const transfer = [...new Set([...out.map((t) => t.buffer), ...returned])];
  return { value: { outputs: out, runMs, inputs: returned }, transfer };
}

const init = workerData as SessionWorkerInit;
hostWorker<SessionInfo>(async () => {
  const opened = await openWithFallback(init, (options) => openSessionRunner(init.modelPath, options));
  const session = opened.value;
  if (init.warmup) await session.run(zeroFeeds(session.inputs), []);
  return {
    provider: opened.provider,
    fallbackReason: opened.fallbackReason,
    info: { inputs: session.inputs, outputs: session.outputs, nativeRun: session.now },
    methods: { run: (payload: RunPayload) => run(session, payload) },
    returned: (_method, payload: RunPayload) => payload.feeds.map((f) => f.buffer),
    close: async () => session.release(),
  };
});
