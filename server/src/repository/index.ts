export { createModelRegistry } from "./model-registry.js";
export type { ModelRegistry, ModelStatus, VersionStatus, ModelStateName } from "./model-registry.js";
export { parseModelConfig, selectVersions, DEFAULT_AUTO_BATCH_SIZE } from "./model-config.js";
export type { ModelConfig, ServingDefaults, VersionPolicy } from "./model-config.js";
export type { LoadedVersion } from "./loaded-version.js";
export { checkModelName, modelPath } from "./repository-layout.js";
export { publishVersion } from "./publish-version.js";
export type { PublishFiles } from "./publish-version.js";
