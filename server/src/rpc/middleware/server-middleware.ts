import type { Logger } from "pino";
import type { Authenticator } from "../../auth/index.js";
import { callLoggingMiddleware } from "./call-logging.js";
import { authenticationMiddleware, authorizationMiddleware } from "./authentication.js";
import type { Middleware } from "./middleware.js";
import { quotaMiddleware } from "./quota.js";
import { telemetryMiddleware } from "./telemetry.js";

/**
 * The middleware of every RPC, in order. Telemetry and logging come first so refused calls are counted and
 * logged too; the caller is known before its role is checked, and quotas are charged only to callers allowed
 * to make the call. Errors are mapped to gRPC status at the edge (rpc/handlers.ts), after all of these.
 */
export function serverMiddleware(auth: Authenticator, logger: Logger): Middleware[] {
  return [telemetryMiddleware(), callLoggingMiddleware(logger), authenticationMiddleware(auth), authorizationMiddleware(auth), quotaMiddleware(auth.quotas)];
}
