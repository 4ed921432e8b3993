export { createModelRegistry } from "./model-registry.js";
export type { ModelRegistry, ModelStatus, VersionStatus, ModelStateName } from "./model-registry.js";
export type { LoadedVersion } from "./loaded-version.js";
export { createModelScopes } from "./model-scopes.js";
export type { ModelScopes, ScopeCaller } from "./model-scopes.js";
export { DEFAULT_SUPERVISION, SupervisedSession } from "./session-supervisor.js";
export type { SessionSupervision, SupervisedState } from "./session-supervisor.js";
export type { VersionHealth } from "./loaded-version.js";
