export { parseModelConfig, selectVersions, DEFAULT_AUTO_BATCH_SIZE } from "./model-config.js";
export type { ModelConfig, ServingDefaults, VersionPolicy } from "./model-config.js";
export { checkModelName, listModelNames, listVersions, modelExists, modelPath, readConfigJson } from "./repository-layout.js";
export { findPublishedVersion, publishVersion, removeStaleStaging, withdrawVersion } from "./publish-version.js";
export type { RepositoryLock } from "./publish-version.js";
export type { PublishFiles } from "./publish-version.js";
