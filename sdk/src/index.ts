// @aiaas/sdk: a typed client for aiaas model servers.
export { createClient } from "./client.js";
export type { AiaasClient, ModelsApi, PredictOptions, PredictResult, JobsApi, TrainChunk } from "./client.js";
export type { TrainSpecInput, LayerInput } from "./train-spec.js";
export { checkTrainSpecKeys } from "./train-spec-keys.js";
export type { TrainEvent, JobInfo, JobStateName, FinalMetrics } from "./train-events.js";
export type { ClientOptions, CallOptions, KeepaliveOptions, RetryOptions, TlsOptions } from "./client-options.js";
export { AiaasError, Code } from "./errors.js";
export { Tensor } from "./tensor.js";
export type { TensorType, TensorDataMap } from "./tensor.js";
export type { PredictStream, StreamRequest, StreamResult } from "./predict-stream.js";
export type { ModelInfo, ModelVersionInfo, ModelStateName, TensorInfo, VersionStatistics } from "./model-info.js";
export type { TrafficSample, VersionTraffic } from "./traffic.js";
