import type { ElementType } from "../onnx/element-type.js";
import type { TypedData } from "../onnx/graph-builder.js";

/** A tensor crossing the thread boundary; its buffer is transferred, not copied. */
export interface HostTensor {
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TypedData;
}

export interface TrainWorkerInit {
  readonly trainModel: Uint8Array;
  readonly evalModel: Uint8Array;
  readonly params: readonly { readonly name: string; readonly tensor: HostTensor }[];
  readonly slots: readonly string[];
  readonly intraOpThreads: number;
  readonly providers: readonly ("cuda" | "cpu")[];
  readonly cudaDeviceId: number;
}

export interface StepResult {
  readonly loss: number;
  /** Classification: rows whose arg-max equals the label. */
  readonly correct: number | undefined;
}

/** Parameters and optimizer state, as a checkpoint holds them. */
export interface TrainState {
  readonly params: Record<string, HostTensor>;
  /** By `<param>.<slot>`. */
  readonly state: Record<string, HostTensor>;
}

export type TrainWorkerRequest =
  | { readonly id: number; readonly kind: "step"; readonly feeds: Record<string, HostTensor>; readonly lr: number; readonly step: number }
  | { readonly id: number; readonly kind: "evaluate"; readonly feeds: Record<string, HostTensor> }
  | { readonly id: number; readonly kind: "get-state" }
  | { readonly id: number; readonly kind: "set-state"; readonly state: TrainState }
  | { readonly id: number; readonly kind: "close" };

export type TrainWorkerReply =
  | { readonly kind: "ready"; readonly provider: "cuda" | "cpu"; readonly fallbackReason?: string }
  | { readonly kind: "failed"; readonly message: string }
  | { readonly id: number; readonly kind: "result"; readonly result: StepResult }
  | { readonly id: number; readonly kind: "state"; readonly state: TrainState }
  | { readonly id: number; readonly kind: "done" }
  | { readonly id: number; readonly kind: "error"; readonly message: string };
