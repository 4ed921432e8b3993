export { DEFAULT_LIMITS, SERVE_DEFAULTS } from "./defaults.js";
export { SERVE_SETTINGS, envOf, flagOf, loadServeConfig } from "./serve-config.js";
export type { ConfigSources, ServeConfig, Setting } from "./serve-config.js";
export { readConfigFile } from "./config-file.js";
