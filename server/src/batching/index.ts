export { createBatcher } from "./batcher.js";
export type { Batcher, BatcherOptions, BatchExecutor } from "./batcher.js";
export type { BatchRequest, BatchResult } from "./batch-request.js";
export type { BatchStats } from "./batch-stats.js";
export { validateRequest, describeSpec, byteLength } from "./validate-request.js";
export type { NamedTensor, PreparedRequest } from "./validate-request.js";
export type { ModelSignature, TensorSpec } from "./model-signature.js";
