import type { QuotaCounters } from "../../auth/index.js";
import type { CallContext } from "../call-context.js";
import type { Middleware } from "./middleware.js";

/**
 * The caller's rate and in-flight limits: a unary call takes a rate token as it enters, a stream one per
 * request it carries (through the context's takeToken); every call holds an in-flight slot until it ends.
 */
export function quotaMiddleware(quotas: QuotaCounters): Middleware {
  return {
    name: "quota",
    forMethod({ streaming }) {
      // Per method, not per call (see authentication.ts): the caller is read from `this`, the call's context.
      const takeToken = function (this: CallContext): void {
        quotas.takeRequest(this.caller);
      };
      return (context) => {
        const caller = context.caller;
        if (streaming) context.takeToken = takeToken;
        else quotas.takeRequest(caller);
        const release = quotas.enter(caller);
        return () => release();
      };
    },
  };
}
