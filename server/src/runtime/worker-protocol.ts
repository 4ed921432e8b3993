// The one request/reply protocol between the main thread and a runtime worker (a serving session or a
// training job): calls by method name with an id, replies by id, and the worker's readiness first.
import type { ProviderName } from "./execution-providers.js";
import type { TensorType } from "./tensor-types.js";

export type { TransferTensor } from "./tensor-types.js";

/** A call to a worker; `close` is reserved: the worker releases its sessions, replies, and ends. */
export interface WorkerCall {
  readonly id: number;
  readonly method: string;
  readonly payload: unknown;
}

/** What every worker reports when it has opened its sessions. */
export interface WorkerReady<Info> {
  readonly kind: "ready";
  readonly provider: ProviderName;
  readonly fallbackReason?: string;
  readonly info: Info;
}

export type WorkerMessage<Info = unknown> =
  | WorkerReady<Info>
  | { readonly kind: "failed"; readonly message: string }
  | { readonly kind: "reply"; readonly id: number; readonly value: unknown }
  /** `returned`: buffers the call had transferred, handed back so the caller may reuse them. */
  | { readonly kind: "error"; readonly id: number; readonly message: string; readonly returned: readonly ArrayBuffer[] };

/** A session's input or output as ONNX Runtime describes it. */
export interface ValueSpec {
  readonly name: string;
  readonly type: TensorType | string;
  /** -1 for a symbolic or unknown dimension. */
  readonly dims: readonly number[];
  readonly isTensor: boolean;
}
