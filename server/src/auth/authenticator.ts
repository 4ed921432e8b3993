import { permissionDenied, unauthenticated } from "../common/errors.js";
import type { AuditLog } from "./audit-log.js";
import { LOCAL_CALLER, type Caller, type Role } from "./caller.js";
import type { KeyDirectory } from "./key-directory.js";
import type { QuotaCounters } from "./quota-counters.js";

export interface Authenticator {
  readonly enabled: boolean;
  /**
   * The caller of a call from its `authorization` header values (all of them: more than one is refused);
   * UNAUTHENTICATED otherwise (audited). The operator's caller when keys are off.
   */
  authenticate(authorization: readonly (string | Buffer)[], method: string, peer: string): Caller;
  /** PERMISSION_DENIED (audited) unless the caller has the role the method needs (admin has every role). */
  checkRole(caller: Caller, method: string, role: Role, peer: string): void;
  /** Before each further message of a stream: a key revoked or expired meanwhile is refused at once. */
  recheck(caller: Caller, method: string, peer: string): void;
  /** Calls `listener` whenever the keys may have changed (a key revoked here or, with a shared database, on another replica). */
  onKeysChanged(listener: () => void): () => void;
  readonly quotas: QuotaCounters;
  readonly audit: AuditLog;
}

function hasRole(caller: Caller, role: Role): boolean {
  return caller.roles.has(role) || caller.roles.has("admin");
}

export function createAuthenticator(options: { keys: KeyDirectory | undefined; quotas: QuotaCounters; audit: AuditLog }): Authenticator {
  const { keys, quotas, audit } = options;
  // Callers are cached per key id so per-call work is a map lookup and a hash.
  const callers = new Map<string, Caller>();
  const deny = (error: Error, method: string, peer: string, reason: string, caller?: Caller): never => {
    audit.record({ action: method, outcome: "denied", caller, peer, reason });
    throw error;
  };
  return {
    enabled: keys !== undefined,
    quotas,
    audit,
    authenticate(headers, method, peer) {
      if (!keys) return LOCAL_CALLER;
      if (headers.length > 1) return deny(unauthenticated("send one authorization header: this call carried several"), method, peer, "several authorization headers");
      const header = headers[0];
      if (typeof header !== "string" || !header) {
        return deny(unauthenticated("this server needs an API key: send the metadata authorization: Bearer <key>"), method, peer, "no key");
      }
      const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
      if (!token) return deny(unauthenticated('the authorization metadata must be "Bearer <key>"'), method, peer, "malformed authorization");
      const verdict = keys.verify(token);
      if (!verdict.ok) return deny(unauthenticated(`the API key is not valid (${verdict.reason})`), method, peer, verdict.reason);
      const key = verdict.key;
      let caller = callers.get(key.id);
      if (!caller || caller.tenant !== key.tenant || caller.roles.size !== key.roles.length) {
        caller = { keyId: key.id, tenant: key.tenant, roles: new Set(key.roles) };
        callers.set(key.id, caller);
      }
      return caller;
    },
    checkRole(caller, method, role, peer) {
      if (!keys || hasRole(caller, role)) return;
      deny(permissionDenied(`this key lacks the "${role}" role that ${method} needs`), method, peer, `missing role ${role}`, caller);
    },
    onKeysChanged: (listener) => keys?.onChange?.(listener) ?? (() => undefined),
    recheck(caller, method, peer) {
      if (!keys || caller === LOCAL_CALLER) return;
      const key = keys.current(caller.keyId);
      const reason = !key ? "unknown key" : key.revokedMs !== undefined ? "revoked key" : key.expiresMs !== undefined && Date.now() >= key.expiresMs ? "expired key" : undefined;
      if (reason) deny(unauthenticated(`the API key is no longer valid (${reason})`), method, peer, reason, caller);
    },
  };
}
