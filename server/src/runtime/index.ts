export { createSessionInstance } from "./session-instance.js";
export type { SessionInstance, RunResult } from "./session-instance.js";
export { SessionGoneError } from "./session-gone.js";
export { parseProviders, PROVIDER_NAMES } from "./execution-providers.js";
export type { ProviderName } from "./execution-providers.js";
export { DATATYPE_NAME, ELEMENT_SIZE, TENSOR_TYPES, isTensorType, typedView } from "./tensor-types.js";
export type { TensorType, HostTensor } from "./tensor-types.js";
export type { SessionWorkerInit, ValueSpec, WireTensor } from "./worker-protocol.js";
