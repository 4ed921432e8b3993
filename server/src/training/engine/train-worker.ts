// Entry point of a training thread: runs the train-step and eval sessions, keeping parameters and optimizer
// state inside the thread between steps (onnxruntime-node's run() blocks its thread).
import { workerData } from "node:worker_threads";
import ort from "onnxruntime-node";
import { fromOrtTensor, toOrtTensor } from "../../runtime/ort-tensors.js";
import { openWithFallback } from "../../runtime/session-options.js";
import { buffersOf, type TransferTensor } from "../../runtime/tensor-types.js";
import { hostWorker } from "../../runtime/worker-host.js";
import type { EvaluatePayload, StatePayload, StepPayload, StepResult, TrainWorkerInit } from "./train-worker-protocol.js";

type Sessions = { train: ort.InferenceSession; evaluate: ort.InferenceSession };

/** Parameters and optimizer state between steps, as ORT tensors. */
class TrainingState {
  // Each step's outputs become the next step's inputs: two generations of buffers alternate, so no run
  // writes into a buffer it reads (that gave wrong weights in a probe).
  readonly params = new Map<string, ort.Tensor>();
  readonly state = new Map<string, ort.Tensor>();
  private readonly evalParams: string[];
  private readonly scalarType: "float32" | "float64";

  constructor(
    private readonly sessions: Sessions,
    init: TrainWorkerInit,
  ) {
    for (const tensor of init.params) {
      this.params.set(tensor.name, toOrtTensor(tensor));
      for (const slot of init.slots) {
        const zeros = { ...tensor, name: `${tensor.name}.${slot}`, buffer: new ArrayBuffer(tensor.byteLength), byteOffset: 0 };
        this.state.set(zeros.name, toOrtTensor(zeros));
      }
    }
    // Running statistics travel with the parameters (checkpoints, the published model) but have no optimizer state.
    for (const tensor of init.buffers) this.params.set(tensor.name, toOrtTensor(tensor));
    this.evalParams = sessions.evaluate.inputNames.filter((n) => this.params.has(n));
    this.scalarType = init.params[0]?.type === "float64" ? "float64" : "float32";
  }

  async step({ feeds, lr, step }: StepPayload): Promise<StepResult> {
    const all: Record<string, ort.Tensor> = { lr: this.scalar(lr), step: this.scalar(step) };
    for (const t of feeds) all[t.name] = toOrtTensor(t);
    for (const [k, v] of this.params) all[k] = v;
    for (const [k, v] of this.state) all[k] = v;
    const out = await this.sessions.train.run(all);
    for (const k of this.params.keys()) this.params.set(k, out[`${k}.next`]!);
    for (const k of this.state.keys()) this.state.set(k, out[`${k}.next`]!);
    return metrics(out);
  }

  async evaluate({ feeds }: EvaluatePayload): Promise<StepResult> {
    const all: Record<string, ort.Tensor> = {};
    for (const t of feeds) all[t.name] = toOrtTensor(t);
    for (const k of this.evalParams) all[k] = this.params.get(k)!;
    return metrics(await this.sessions.evaluate.run(all));
  }

  /** Copies: ORT may reuse its output buffers for the next step. */
  snapshot(): StatePayload {
    return {
      params: [...this.params].map(([k, v]) => fromOrtTensor(k, v, true)),
      state: [...this.state].map(([k, v]) => fromOrtTensor(k, v, true)),
    };
  }

  restore(next: StatePayload): void {
    const byName = (list: readonly TransferTensor[]): Map<string, TransferTensor> => new Map(list.map((t) => [t.name, t]));
    const params = byName(next.params);
    const state = byName(next.state);
    for (const k of this.params.keys()) {
      const t = params.get(k);
      if (!t) throw new Error(`checkpoint lacks parameter "${k}"`);
      this.params.set(k, toOrtTensor(t));
    }
    for (const k of this.state.keys()) {
      const t = state.get(k);
      if (!t) throw new Error(`checkpoint lacks optimizer state "${k}"`);
      this.state.set(k, toOrtTensor(t));
    }
  }

  private scalar(v: number): ort.Tensor {
    return new ort.Tensor(this.scalarType, this.scalarType === "float64" ? Float64Array.of(v) : Float32Array.of(v), []);
  }
}

function metrics(out: ort.InferenceSession.OnnxValueMapType): StepResult {
  return { loss: Number(out.loss!.data[0]), correct: out.correct ? Number(out.correct.data[0]) : undefined };
}

const init = workerData as TrainWorkerInit;
hostWorker<undefined>(async () => {
  const opened = await openWithFallback(init, async (options) => ({
    train: await ort.InferenceSession.create(init.trainModel, options),
    evaluate: await ort.InferenceSession.create(init.evalModel, options),
  }));
  const sessions = opened.value;
  const training = new TrainingState(sessions, init);
  return {
    provider: opened.provider,
    fallbackReason: opened.fallbackReason,
    info: undefined,
    methods: {
      step: async (payload: StepPayload) => ({ value: await training.step(payload) }),
      evaluate: async (payload: EvaluatePayload) => ({ value: await training.evaluate(payload) }),
      "get-state": () => {
        const state = training.snapshot();
        return { value: state, transfer: buffersOf([...state.params, ...state.state]) };
      },
      "set-state": (payload: StatePayload) => ({ value: training.restore(payload) }),
    },
    close: async () => {
      await sessions.train.release();
      await sessions.evaluate.release();
    },
  };
});
