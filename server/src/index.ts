export { startServer } from "./server.js";
export type { ServeOptions, RunningServer } from "./server.js";
export { ServerError } from "./errors.js";
export { parseProviders } from "./runtime/index.js";
export type { ProviderName } from "./runtime/index.js";
export { installPrometheusMetrics } from "./prometheus-metrics.js";
export type { MetricsHandler } from "./prometheus-metrics.js";
