import type { Authenticator } from "../../auth/index.js";
import { ServerError } from "../../common/errors.js";
import type { CallContext } from "../call-context.js";
import type { Middleware } from "./middleware.js";

/**
 * Resolves the caller from the call's one `authorization` header and puts it in the context, with its tenant
 * as the call's fairness key. On a stream every further message re-checks the key, so a key revoked or expired
 * meanwhile is refused at once; and when the keys change, every open stream is checked, so one that waits
 * (WatchJob, an idle PredictStream) ends with UNAUTHENTICATED too.
 */
export function authenticationMiddleware(auth: Authenticator): Middleware {
  const open = new Set<CallContext>();
  auth.onKeysChanged(() => {
    for (const context of open) {
      try {
        context.checkMessage();
      } catch (error) {
        open.delete(context);
        context.terminate(ServerError.from(error));
      }
    }
  });
  const forget = (context: CallContext) => () => void open.delete(context);
  return {
    name: "authentication",
    forMethod({ method, streaming }) {
      // One function per method, reading the call from `this`: a closure per call that captured its context
      // tripled the major GCs of a busy PredictStream (measured with --trace-gc under `npm run bench:ab`).
      const recheck = function (this: CallContext): void {
        auth.recheck(this.caller, method, this.peer);
      };
      return (context) => {
        const caller = auth.authenticate(context.metadata.get("authorization"), method, context.peer);
        context.caller = caller;
        if (caller.tenant !== undefined) context.fairnessKey = caller.tenant;
        if (!streaming || !auth.enabled) return;
        context.checkMessage = recheck;
        open.add(context);
        return forget(context);
      };
    },
  };
}

/** Refuses a caller that lacks the role the method declares (PERMISSION_DENIED, audited). */
export function authorizationMiddleware(auth: Authenticator): Middleware {
  return {
    name: "authorization",
    forMethod({ method, role }) {
      return (context) => auth.checkRole(context.caller, method, role, context.peer);
    },
  };
}
