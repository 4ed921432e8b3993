export { composeMiddleware } from "./middleware.js";
export type { CallEnd, CallInfo, Middleware } from "./middleware.js";
export { telemetryMiddleware } from "./telemetry.js";
export { callLoggingMiddleware } from "./call-logging.js";
export { authenticationMiddleware, authorizationMiddleware } from "./authentication.js";
export { quotaMiddleware } from "./quota.js";
export { serverMiddleware } from "./server-middleware.js";
