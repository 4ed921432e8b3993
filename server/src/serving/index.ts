export { createModelRegistry } from "./model-registry.js";
export type { ModelRegistry, ModelStatus, VersionStatus, ModelStateName } from "./model-registry.js";
export type { LoadedVersion } from "./loaded-version.js";
export { createModelScopes } from "./model-scopes.js";
export type { ModelScopes, ScopeCaller } from "./model-scopes.js";
