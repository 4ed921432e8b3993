// What a training worker is started with and what its calls carry, over the runtime's one worker protocol
// (runtime/worker-protocol.ts): tensors cross as TransferTensors, kept as typed ConstTensors on each side.
import type { RuntimeOptions, TransferTensor } from "../../runtime/index.js";
import type { ConstTensor } from "../onnx/graph-builder.js";

export interface TrainWorkerInit extends RuntimeOptions {
  readonly trainModel: Uint8Array;
  readonly evalModel: Uint8Array;
  readonly params: readonly TransferTensor[];
  /** Running statistics: replaced by their `.next` output each step, kept with the parameters, no optimizer state. */
  readonly buffers: readonly TransferTensor[];
  /** Optimizer state slots per parameter (e.g. Adam's "m", "v"). */
  readonly slots: readonly string[];
}

export interface StepResult {
  readonly loss: number;
  /** Classification: rows whose arg-max equals the label. */
  readonly correct: number | undefined;
}

/** Parameters and optimizer state, as a checkpoint holds them. */
export interface TrainState {
  readonly params: Record<string, ConstTensor>;
  /** By `<param>.<slot>`. */
  readonly state: Record<string, ConstTensor>;
}

/** Payloads of the worker's methods: "step", "evaluate", "get-state" (no payload), "set-state". */
export interface StepPayload {
  readonly feeds: readonly TransferTensor[];
  readonly lr: number;
  readonly step: number;
}
export interface EvaluatePayload {
  readonly feeds: readonly TransferTensor[];
}
/** TrainState across the thread boundary. */
export interface StatePayload {
  readonly params: readonly TransferTensor[];
  readonly state: readonly TransferTensor[];
}
