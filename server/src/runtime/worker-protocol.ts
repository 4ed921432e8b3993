import type { ProviderName } from "./execution-providers.js";
import type { TensorType } from "./tensor-types.js";

/** What a session worker is started with (its workerData). */
export interface SessionWorkerInit {
  readonly modelPath: string;
  readonly providers: readonly ProviderName[];
  readonly cudaDeviceId: number;
  readonly intraOpThreads: number;
  readonly graphOptimizationLevel: "disabled" | "basic" | "extended" | "all";
  readonly allowSpinning: boolean;
  readonly warmup: boolean;
}

export interface ValueSpec {
  readonly name: string;
  readonly type: TensorType | string;
  /** -1 for a symbolic or unknown dimension. */
  readonly dims: readonly number[];
  readonly isTensor: boolean;
}

/** A tensor crossing the thread boundary: its buffer is transferred, not copied. */
export interface WireTensor {
  readonly name: string;
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly buffer: ArrayBuffer;
  readonly byteOffset: number;
  readonly byteLength: number;
}

export type ToWorker =
  | { readonly kind: "run"; readonly id: number; readonly feeds: readonly WireTensor[]; readonly outputs: readonly string[] }
  | { readonly kind: "close" };

export type FromWorker =
  | {
      readonly kind: "ready";
      readonly provider: ProviderName;
      readonly fallbackReason?: string;
      readonly inputs: readonly ValueSpec[];
      readonly outputs: readonly ValueSpec[];
    }
  | { readonly kind: "failed"; readonly message: string }
  | {
      readonly kind: "result";
      readonly id: number;
      readonly outputs: readonly WireTensor[];
      readonly runMs: number;
      /** The feed buffers, returned for reuse. */
      readonly inputs: readonly ArrayBuffer[];
    }
  | { readonly kind: "run-error"; readonly id: number; readonly message: string; readonly inputs: readonly ArrayBuffer[] }
  | { readonly kind: "closed" };
