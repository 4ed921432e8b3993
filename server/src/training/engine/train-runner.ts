import { spawnWorker } from "../../runtime/spawn-worker.js";
import { encodeModel } from "../onnx/model-file.js";
import type { ConstTensor } from "../onnx/graph-builder.js";
import type { ModelProto } from "onnx-buf";
import { bakeWeights, type TrainProgram } from "./train-program.js";
import type { HostTensor, StepResult, TrainState, TrainWorkerInit, TrainWorkerReply, TrainWorkerRequest } from "./train-worker-protocol.js";

export interface TrainRunnerOptions {
  /** ORT intra-op threads for the training session. */
  readonly threads?: number;
  readonly providers?: readonly ("cuda" | "cpu")[];
  readonly cudaDeviceId?: number;
}

/** Runs a train program in its own thread: step, evaluate, and read or restore parameters and state. */
export interface TrainRunner {
  readonly provider: "cuda" | "cpu";
  /** Why CUDA was not used, when it was asked for. */
  readonly fallbackReason: string | undefined;
  /** Steps taken so far (the optimizer's step counter). */
  readonly steps: number;
  /** One optimizer step on a batch (feeds: the model's inputs and `labels`); buffers are transferred. */
  step(feeds: Record<string, HostTensor>, lr: number): Promise<StepResult>;
  /** Loss and metrics of the current parameters on a batch, without updating them. */
  evaluate(feeds: Record<string, HostTensor>): Promise<StepResult>;
  state(): Promise<TrainState>;
  restore(state: TrainState, steps: number): Promise<void>;
  /** The current parameters as initializer tensors (for bakeWeights). */
  parameters(): Promise<Map<string, ConstTensor>>;
  /** The inference model: the forward graph with the current weights baked in. */
  exportModel(docString?: string): Promise<ModelProto>;
  close(): Promise<void>;
}


const transferList = (feeds: Record<string, HostTensor>): ArrayBuffer[] => {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(feeds)) seen.add(t.data.buffer as ArrayBuffer);
  return [...seen];
};

export async function createTrainRunner(program: TrainProgram, options: TrainRunnerOptions = {}): Promise<TrainRunner> {
  const init: TrainWorkerInit = {
    trainModel: encodeModel(program.trainModel),
    evalModel: encodeModel(program.evalModel),
    params: program.params.map((p) => {
      const t = program.initialParams.get(p.name)!;
      return { name: p.name, tensor: { type: t.type, dims: t.dims, data: t.data.slice() } };
    }),
    slots: program.slots,
    intraOpThreads: options.threads ?? 1,
    providers: options.providers ?? ["cpu"],
    cudaDeviceId: options.cudaDeviceId ?? 0,
  };
  const worker = spawnWorker(import.meta.url, "train-worker", init);
  const pending = new Map<number, { resolve(reply: TrainWorkerReply): void; reject(error: Error): void }>();
  let nextId = 1;
  let steps = 0;
  let closed = false;

  const ready = await new Promise<Extract<TrainWorkerReply, { kind: "ready" }>>((resolve, reject) => {
    worker.once("message", (m: TrainWorkerReply) => (m.kind === "ready" ? resolve(m) : reject(new Error(m.kind === "failed" ? m.message : "unexpected message"))));
    worker.once("error", reject);
  }).catch(async (error: Error) => {
    await worker.terminate();
    throw error;
  });
  worker.on("message", (m: TrainWorkerReply) => {
    if (!("id" in m)) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.kind === "error") p.reject(new Error(m.message));
    else p.resolve(m);
  });
  const failAll = (error: Error): void => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on("error", failAll);
  worker.on("exit", (code) => failAll(new Error(`training thread exited (code ${code})`)));

  const call = <K extends TrainWorkerRequest["kind"]>(request: Omit<Extract<TrainWorkerRequest, { kind: K }>, "id">, transfer: ArrayBuffer[] = []): Promise<TrainWorkerReply> => {
    if (closed) return Promise.reject(new Error("the train runner is closed"));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  };

  const state = async (): Promise<TrainState> => {
    const reply = await call<"get-state">({ kind: "get-state" });
    return (reply as Extract<TrainWorkerReply, { kind: "state" }>).state;
  };

  const parameters = async (): Promise<Map<string, ConstTensor>> => {
    const s = await state();
    return new Map(Object.entries(s.params).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: t.data }]));
  };

  return {
    provider: ready.provider,
    fallbackReason: ready.fallbackReason,
    get steps() {
      return steps;
    },
    async step(feeds, lr) {
      const reply = await call<"step">({ kind: "step", feeds, lr, step: steps + 1 }, transferList(feeds));
      steps++;
      return (reply as Extract<TrainWorkerReply, { kind: "result" }>).result;
    },
    async evaluate(feeds) {
      const reply = await call<"evaluate">({ kind: "evaluate", feeds }, transferList(feeds));
      return (reply as Extract<TrainWorkerReply, { kind: "result" }>).result;
    },
    state,
    async restore(state, stepCount) {
      await call<"set-state">({ kind: "set-state", state });
      steps = stepCount;
    },
    parameters,
    async exportModel(docString) {
      return bakeWeights(program.forward, await parameters(), docString);
    },
    async close() {
      if (closed) return;
      await call<"close">({ kind: "close" }).catch(() => undefined);
      closed = true;
      await worker.terminate();
    },
  };
}
