import { ModelState, type Model } from "./gen/aiaas/v1/models.js";
import { fromWireDataType, type TensorType } from "./tensor.js";

export type ModelStateName = "loading" | "ready" | "unavailable" | "unloading" | "unloaded" | "failed" | "unknown";

/** An input or output of a model version: -1 marks a variable dimension (the batch dimension, say). */
export interface TensorInfo {
  readonly name: string;
  readonly type: TensorType | "unknown";
  readonly shape: readonly number[];
}

export interface VersionStatistics {
  readonly successCount: number;
  readonly failureCount: number;
  readonly batchCount: number;
  /** Rows run, summed over batches; inferenceCount / batchCount is the mean batch size. */
  readonly inferenceCount: number;
  readonly queueTimeMs: number;
  readonly computeTimeMs: number;
  /** Of batchCount, those run on the server's main thread while it was idle instead of on a worker. */
  readonly inlineBatchCount: number;
}

export interface ModelVersionInfo {
  readonly version: string;
  readonly state: ModelStateName;
  readonly reason: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly statistics: VersionStatistics | undefined;
}

/** What the server says about a model: its state, versions (newest first), batching and providers. */
export interface ModelInfo {
  readonly name: string;
  readonly platform: string;
  readonly state: ModelStateName;
  readonly reason: string;
  readonly versions: readonly ModelVersionInfo[];
  readonly maxBatchSize: number;
  readonly instanceCount: number;
  readonly providers: readonly string[];
}

const STATES: Record<number, ModelStateName> = {
  [ModelState.MODEL_STATE_LOADING]: "loading",
  [ModelState.MODEL_STATE_READY]: "ready",
  [ModelState.MODEL_STATE_UNLOADING]: "unloading",
  [ModelState.MODEL_STATE_UNLOADED]: "unloaded",
  [ModelState.MODEL_STATE_FAILED]: "failed",
  [ModelState.MODEL_STATE_UNAVAILABLE]: "unavailable",
};

export function toModelInfo(model: Model): ModelInfo {
  const tensor = (t: { name: string; datatype: number; shape: bigint[] }): TensorInfo => ({
    name: t.name,
    type: fromWireDataType(t.datatype) ?? "unknown",
    shape: t.shape.map(Number),
  });
  return {
    name: model.name,
    platform: model.platform,
    state: STATES[model.state] ?? "unknown",
    reason: model.reason,
    versions: model.versions.map((v) => ({
      version: v.version,
      state: STATES[v.state] ?? "unknown",
      reason: v.reason,
      inputs: v.inputs.map(tensor),
      outputs: v.outputs.map(tensor),
      statistics: v.statistics && {
        successCount: Number(v.statistics.successCount),
        failureCount: Number(v.statistics.failureCount),
        batchCount: Number(v.statistics.batchCount),
        inferenceCount: Number(v.statistics.inferenceCount),
        queueTimeMs: Number(v.statistics.queueTimeUs) / 1000,
        computeTimeMs: Number(v.statistics.computeTimeUs) / 1000,
        inlineBatchCount: Number(v.statistics.inlineBatchCount),
      },
    })),
    maxBatchSize: model.batching?.maxBatchSize ?? 0,
    instanceCount: model.instanceCount,
    providers: model.providers,
  };
}
