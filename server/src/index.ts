export { startServer } from "./server.js";
export type { ServeOptions, RunningServer } from "./server.js";
export { ServerError } from "./common/errors.js";
export { parseProviders } from "./runtime/index.js";
export type { ProviderName } from "./runtime/index.js";
export { installTelemetry } from "./telemetry/setup.js";
export type { MetricsHandler, Telemetry } from "./telemetry/setup.js";
export * as training from "./training/index.js";
export type { LoadedVersion, ModelRegistry, ModelStatus, SessionSupervision, SupervisedSession, VersionHealth } from "./serving/index.js";
