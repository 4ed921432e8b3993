import type { Authenticator } from "../../auth/index.js";
import type { Middleware } from "./middleware.js";

/**
 * Resolves the caller from the call's one `authorization` header and puts it in the context, with its tenant
 * as the call's fairness key. On a stream every further message re-checks the key, so a key revoked or expired
 * meanwhile is refused at once.
 */
export function authenticationMiddleware(auth: Authenticator): Middleware {
  return {
    name: "authentication",
    forMethod({ method, streaming }) {
      return (context) => {
        const caller = auth.authenticate(context.metadata.get("authorization"), method, context.peer);
        context.caller = caller;
        if (caller.tenant !== undefined) context.fairnessKey = caller.tenant;
        if (streaming) context.checkMessage = () => auth.recheck(caller, method, context.peer);
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
