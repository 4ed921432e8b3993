// Entry point of a session worker thread: one ONNX Runtime session per thread, because onnxruntime-node's
// run() blocks the thread that calls it and the main thread must stay free for gRPC and batching.
import { parentPort, workerData } from "node:worker_threads";
import ort from "onnxruntime-node";
import type { FromWorker, SessionWorkerInit, ToWorker, ValueSpec, WireTensor } from "./worker-protocol.js";
import type { ProviderName } from "./execution-providers.js";
import { ELEMENT_SIZE, isTensorType, typedView, type TensorType } from "./tensor-types.js";

const init = workerData as SessionWorkerInit;
const port = parentPort!;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

function sessionOptions(provider: ProviderName): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === "cuda" ? [{ name: "cuda", deviceId: init.cudaDeviceId } as ort.InferenceSession.ExecutionProviderConfig, "cpu"] : ["cpu"],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: init.graphOptimizationLevel,
    // Spinning ORT threads steal the cores gRPC needs.
    extra: { session: { intra_op: { allow_spinning: init.allowSpinning ? "1" : "0" } } },
  };
}

async function open(): Promise<{ session: ort.InferenceSession; provider: ProviderName; fallbackReason?: string }> {
  let fallbackReason: string | undefined;
  for (const provider of init.providers) {
    try {
      return { session: await ort.InferenceSession.create(init.modelPath, sessionOptions(provider)), provider, fallbackReason };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // A model that cannot load on the last provider is broken, not a provider problem.
      if (provider === init.providers[init.providers.length - 1]) throw error;
      fallbackReason = `${provider} unavailable: ${message.split("\n")[0].slice(0, 300)}`;
    }
  }
  throw new Error("no execution provider configured");
}

function spec(meta: ort.InferenceSession.ValueMetadata): ValueSpec {
  if (!meta.isTensor) return { name: meta.name, type: "non-tensor", dims: [], isTensor: false };
  return { name: meta.name, type: meta.type, dims: meta.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)), isTensor: true };
}

function toOrt(t: WireTensor): ort.Tensor {
  const view = typedView(t.type, t.buffer, t.byteOffset, t.byteLength);
  return new ort.Tensor(t.type === "float16" ? "float16" : t.type, view as never, [...t.dims]);
}

async function warmup(session: ort.InferenceSession, inputs: readonly ValueSpec[]): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    if (!isTensorType(input.type)) throw new Error(`input "${input.name}" has type ${input.type}, which aiaas cannot serve`);
    const dims = input.dims.map((d) => (d < 0 ? 1 : d));
    const bytes = dims.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[input.type];
    feeds[input.name] = toOrt({ name: input.name, type: input.type, dims, buffer: new ArrayBuffer(bytes), byteOffset: 0, byteLength: bytes });
  }
  await session.run(feeds);
}

async function main(): Promise<void> {
  let opened: Awaited<ReturnType<typeof open>>;
  let inputs: ValueSpec[];
  try {
    opened = await open();
    inputs = opened.session.inputMetadata.map(spec);
    if (init.warmup) await warmup(opened.session, inputs);
  } catch (error) {
    post({ kind: "failed", message: error instanceof Error ? error.message : String(error) });
    return;
  }
  const { session } = opened;
  post({ kind: "ready", provider: opened.provider, fallbackReason: opened.fallbackReason, inputs, outputs: session.outputMetadata.map(spec) });

  port.on("message", async (message: ToWorker) => {
    if (message.kind === "close") {
      await session.release();
      post({ kind: "closed" });
      port.close();
      return;
    }
    const started = performance.now();
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of message.feeds) feeds[t.name] = toOrt(t);
      const results = message.outputs.length ? await session.run(feeds, [...message.outputs]) : await session.run(feeds);
      const runMs = performance.now() - started;
      const outputs: WireTensor[] = [];
      const transfer: ArrayBuffer[] = [];
      for (const [name, tensor] of Object.entries(results)) {
        const type = tensor.type as TensorType;
        if (!isTensorType(type)) throw new Error(`output "${name}" has type ${tensor.type}, which aiaas cannot serve`);
        const data = tensor.data as unknown as ArrayBufferView;
        // ORT hands each output its own ArrayBuffer: transfer it rather than copy.
        const buffer = data.buffer as ArrayBuffer;
        outputs.push({ name, type, dims: tensor.dims, buffer, byteOffset: data.byteOffset, byteLength: data.byteLength });
        if (!transfer.includes(buffer)) transfer.push(buffer);
      }
      // Hand the input buffers back for reuse: allocating fresh ones per batch costs the main thread GC time.
      const inputs = message.feeds.map((f) => f.buffer);
      post({ kind: "result", id: message.id, outputs, runMs, inputs }, [...transfer, ...inputs]);
    } catch (error) {
      const inputs = message.feeds.map((f) => f.buffer);
      post({ kind: "run-error", id: message.id, message: error instanceof Error ? error.message : String(error), inputs }, inputs);
    }
  });
}

void main();
