import type { TensorType } from "../runtime/index.js";

export interface TensorSpec {
  readonly name: string;
  readonly type: TensorType;
  /** Full dims; -1 marks a variable dimension (always the first one of a batching model). */
  readonly dims: readonly number[];
}

/** What a model version accepts and returns, as served (after config narrowing). */
export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** 0: the model does not batch; otherwise the most rows one batch may hold. */
  readonly maxBatchSize: number;
}
