import { callObserver } from "../call-observer.js";
import type { Middleware } from "./middleware.js";

/** A span, the count and the duration of every RPC by method and status code (the RED metrics). */
export function telemetryMiddleware(): Middleware {
  return {
    name: "telemetry",
    forMethod({ method }) {
      const observe = callObserver(method);
      return () => observe();
    },
  };
}
