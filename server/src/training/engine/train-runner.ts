import { WorkerClient, buffersOf, transferTensor, typedView, type ProviderName, type TransferTensor } from "../../runtime/index.js";
import { encodeModel } from "../onnx/model-file.js";
import type { ConstTensor, TypedData } from "../onnx/graph-builder.js";
import type { ModelProto } from "onnx-buf";
import { bakeWeights, type TrainProgram } from "./train-program.js";
import type { EvaluatePayload, StatePayload, StepPayload, StepResult, TrainState, TrainWorkerInit } from "./train-worker-protocol.js";

export interface TrainRunnerOptions {
  /** ORT intra-op threads for the training session. */
  readonly threads?: number;
  readonly providers?: readonly ProviderName[];
  readonly cudaDeviceId?: number;
}

/** Runs a train program in its own thread: step, evaluate, and read or restore parameters and state. */
export interface TrainRunner {
  readonly provider: ProviderName;
  /** Why CUDA was not used, when it was asked for. */
  readonly fallbackReason: string | undefined;
  /** Steps taken so far (the optimizer's step counter). */
  readonly steps: number;
  /** One optimizer step on a batch (feeds: the model's inputs and `labels`); their buffers are transferred. */
  step(feeds: Record<string, ConstTensor>, lr: number): Promise<StepResult>;
  /** Loss and metrics of the current parameters on a batch, without updating them. */
  evaluate(feeds: Record<string, ConstTensor>): Promise<StepResult>;
  state(): Promise<TrainState>;
  restore(state: TrainState, steps: number): Promise<void>;
  /** The current parameters as initializer tensors (for bakeWeights). */
  parameters(): Promise<Map<string, ConstTensor>>;
  /** The inference model: the forward graph with the current weights baked in. */
  exportModel(docString?: string): Promise<ModelProto>;
  close(): Promise<void>;
}

const toTransfer = (tensors: Record<string, ConstTensor>): TransferTensor[] =>
  Object.entries(tensors).map(([name, t]) => transferTensor(name, t.type, t.dims, t.data));

const toConst = (tensors: readonly TransferTensor[]): Record<string, ConstTensor> =>
  Object.fromEntries(tensors.map((t) => [t.name, { type: t.type, dims: t.dims, data: typedView(t.type, t.buffer, t.byteOffset, t.byteLength) as TypedData }]));

export async function createTrainRunner(program: TrainProgram, options: TrainRunnerOptions = {}): Promise<TrainRunner> {
  const init: TrainWorkerInit = {
    trainModel: encodeModel(program.trainModel),
    evalModel: encodeModel(program.evalModel),
    params: program.params.map((p) => {
      const t = program.initialParams.get(p.name)!;
      return transferTensor(p.name, t.type, t.dims, t.data.slice());
    }),
    buffers: program.buffers.map((b) => {
      const t = program.initialParams.get(b.name)!;
      return transferTensor(b.name, t.type, t.dims, t.data.slice());
    }),
    slots: program.slots,
    intraOpThreads: options.threads ?? 1,
    providers: options.providers ?? ["cpu"],
    cudaDeviceId: options.cudaDeviceId ?? 0,
    graphOptimizationLevel: "all",
    allowSpinning: false,
  };
  const worker = await WorkerClient.start<undefined>(import.meta.url, "train-worker", init);
  let steps = 0;

  const state = async (): Promise<TrainState> => {
    const s = await worker.call<StatePayload>("get-state", undefined);
    return { params: toConst(s.params), state: toConst(s.state) };
  };
  const parameters = async (): Promise<Map<string, ConstTensor>> => new Map(Object.entries((await state()).params));

  return {
    provider: worker.provider,
    fallbackReason: worker.fallbackReason,
    get steps() {
      return steps;
    },
    async step(feeds, lr) {
      const payload: StepPayload = { feeds: toTransfer(feeds), lr, step: steps + 1 };
      const result = await worker.call<StepResult>("step", payload, buffersOf(payload.feeds));
      steps++;
      return result;
    },
    evaluate(feeds) {
      const payload: EvaluatePayload = { feeds: toTransfer(feeds) };
      return worker.call<StepResult>("evaluate", payload, buffersOf(payload.feeds));
    },
    state,
    async restore(next, stepCount) {
      const payload: StatePayload = { params: toTransfer(next.params), state: toTransfer(next.state) };
      await worker.call("set-state", payload);
      steps = stepCount;
    },
    parameters,
    async exportModel(docString) {
      return bakeWeights(program.forward, await parameters(), docString);
    },
    close: () => worker.close(),
  };
}
