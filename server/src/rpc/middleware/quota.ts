import type { QuotaCounters } from "../../auth/index.js";
import type { Middleware } from "./middleware.js";

/**
 * The caller's rate and in-flight limits: a unary call takes a rate token as it enters, a stream one per
 * request it carries (through the context's takeToken); every call holds an in-flight slot until it ends.
 */
export function quotaMiddleware(quotas: QuotaCounters): Middleware {
  return {
    name: "quota",
    forMethod({ streaming }) {
      return (context) => {
        const caller = context.caller;
        if (streaming) context.takeToken = () => quotas.takeRequest(caller);
        else quotas.takeRequest(caller);
        const release = quotas.enter(caller);
        return () => release();
      };
    },
  };
}
