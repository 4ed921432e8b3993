// Entry point of a training thread: runs the train-step and eval sessions, keeping parameters and optimizer
// state inside the thread between steps (onnxruntime-node's run() blocks its thread).
import { parentPort, workerData } from "node:worker_threads";
import ort from "onnxruntime-node";
import type { HostTensor, StepResult, TrainState, TrainWorkerInit, TrainWorkerReply, TrainWorkerRequest } from "./train-worker-protocol.js";

const init = workerData as TrainWorkerInit;
const port = parentPort!;
const post = (message: TrainWorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

const toOrt = (t: HostTensor): ort.Tensor => new ort.Tensor(t.type === "float16" ? "float16" : t.type, t.data as never, [...t.dims]);
const toHost = (t: ort.Tensor): HostTensor => {
  const data = (t.data as Float32Array).slice(); // own copy: ORT may reuse its output buffers
  return { type: t.type as HostTensor["type"], dims: [...t.dims], data };
};

function options(provider: "cuda" | "cpu"): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === "cuda" ? [{ name: "cuda", deviceId: init.cudaDeviceId } as ort.InferenceSession.ExecutionProviderConfig, "cpu"] : ["cpu"],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

async function open(): Promise<{ train: ort.InferenceSession; evaluate: ort.InferenceSession; provider: "cuda" | "cpu"; fallbackReason?: string }> {
  let fallbackReason: string | undefined;
  for (const provider of init.providers) {
    try {
      const train = await ort.InferenceSession.create(init.trainModel, options(provider));
      const evaluate = await ort.InferenceSession.create(init.evalModel, options(provider));
      return { train, evaluate, provider, fallbackReason };
    } catch (error) {
      if (provider === init.providers[init.providers.length - 1]) throw error;
      fallbackReason = `${provider} unavailable: ${String(error instanceof Error ? error.message : error).split("\n")[0]!.slice(0, 300)}`;
    }
  }
  throw new Error("no execution provider configured");
}

const { train, evaluate, provider, fallbackReason } = await open().catch((error: unknown) => {
  post({ kind: "failed", message: error instanceof Error ? error.message : String(error) });
  throw error;
});

// Current parameters and state. Each step's outputs become the next step's inputs: two generations of
// buffers alternate, so no run writes into a buffer it reads (that gave wrong weights in a probe).
const params = new Map<string, ort.Tensor>();
const state = new Map<string, ort.Tensor>();
for (const { name, tensor } of init.params) {
  params.set(name, toOrt(tensor));
  for (const slot of init.slots) {
    state.set(`${name}.${slot}`, new ort.Tensor(tensor.type as "float32", new Float32Array(tensor.data.length), [...tensor.dims]));
  }
}
const evalParams = evaluate.inputNames.filter((n) => params.has(n));
const scalarType = init.params[0]?.tensor.type === "float64" ? "float64" : "float32";
const scalar = (v: number): ort.Tensor => new ort.Tensor(scalarType, scalarType === "float64" ? Float64Array.of(v) : Float32Array.of(v), []);

function metrics(out: ort.InferenceSession.OnnxValueMapType): StepResult {
  return { loss: Number(out.loss!.data[0]), correct: out.correct ? Number(out.correct.data[0]) : undefined };
}

async function step(feeds: Record<string, HostTensor>, lr: number, stepNumber: number): Promise<StepResult> {
  const all: Record<string, ort.Tensor> = { lr: scalar(lr), step: scalar(stepNumber) };
  for (const [k, v] of Object.entries(feeds)) all[k] = toOrt(v);
  for (const [k, v] of params) all[k] = v;
  for (const [k, v] of state) all[k] = v;
  const out = await train.run(all);
  for (const k of params.keys()) params.set(k, out[`${k}.next`]!);
  for (const k of state.keys()) state.set(k, out[`${k}.next`]!);
  return metrics(out);
}

async function evaluateBatch(feeds: Record<string, HostTensor>): Promise<StepResult> {
  const all: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) all[k] = toOrt(v);
  for (const k of evalParams) all[k] = params.get(k)!;
  return metrics(await evaluate.run(all));
}

function snapshot(): TrainState {
  return {
    params: Object.fromEntries([...params].map(([k, v]) => [k, toHost(v)])),
    state: Object.fromEntries([...state].map(([k, v]) => [k, toHost(v)])),
  };
}

function restore(next: TrainState): void {
  for (const k of params.keys()) {
    const t = next.params[k];
    if (!t) throw new Error(`checkpoint lacks parameter "${k}"`);
    params.set(k, toOrt(t));
  }
  for (const k of state.keys()) {
    const t = next.state[k];
    if (!t) throw new Error(`checkpoint lacks optimizer state "${k}"`);
    state.set(k, toOrt(t));
  }
}

port.on("message", (request: TrainWorkerRequest) => {
  void (async () => {
    try {
      switch (request.kind) {
        case "step":
          post({ id: request.id, kind: "result", result: await step(request.feeds, request.lr, request.step) });
          return;
        case "evaluate":
          post({ id: request.id, kind: "result", result: await evaluateBatch(request.feeds) });
          return;
        case "get-state": {
          const s = snapshot();
          const buffers = [...Object.values(s.params), ...Object.values(s.state)].map((t) => t.data.buffer as ArrayBuffer);
          post({ id: request.id, kind: "state", state: s }, buffers);
          return;
        }
        case "set-state":
          restore(request.state);
          post({ id: request.id, kind: "done" });
          return;
        case "close":
          await train.release();
          await evaluate.release();
          post({ id: request.id, kind: "done" });
          port.close();
          return;
      }
    } catch (error) {
      post({ id: request.id, kind: "error", message: error instanceof Error ? error.message : String(error) });
    }
  })();
});

post({ kind: "ready", provider, fallbackReason });
