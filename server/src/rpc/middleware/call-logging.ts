import type { Logger } from "pino";
import { codeName, type Code } from "../../common/errors.js";
import type { Middleware } from "./middleware.js";

/** One debug line per call (method, status, milliseconds); nothing is made when debug logging is off. */
export function callLoggingMiddleware(logger: Logger): Middleware {
  return {
    name: "call-logging",
    forMethod({ method }) {
      return () => {
        if (!logger.isLevelEnabled("debug")) return undefined;
        const started = performance.now();
        return (code) => logger.debug({ method, code: codeName(code as Code), ms: Math.round((performance.now() - started) * 1000) / 1000 }, `${method} ${codeName(code as Code)}`);
      };
    },
  };
}
