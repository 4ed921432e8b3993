import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { AdminService, type ApiKey } from "@aiaas/sdk/gen";
import { ROLES, checkTenantName, type AuditLog, type KeyDirectory, type KeyInfo, type Role } from "../auth/index.js";
import { failedPrecondition, invalidArgument, notFound } from "../common/errors.js";
import type { HandlerEnv } from "./handlers.js";
import { implement } from "./service-builder.js";

export function toWireKey(k: KeyInfo): ApiKey {
  return {
    id: k.id,
    tenant: k.tenant,
    roles: [...k.roles],
    name: k.name,
    createdUnixMs: BigInt(k.createdMs),
    expiresUnixMs: BigInt(k.expiresMs ?? 0),
    revokedUnixMs: BigInt(k.revokedMs ?? 0),
  };
}

/** Key management at run time. Every action is audited; the admin role is checked by the call's interceptor. */
export function createAdminService(keys: KeyDirectory | undefined, audit: AuditLog | undefined, env: HandlerEnv): UntypedServiceImplementation {
  const store = (): KeyDirectory => {
    if (!keys) throw failedPrecondition("this server runs without API keys (no --keys store); start it with --keys FILE to manage keys");
    return keys;
  };
  return implement(AdminService, env, {
    createKey: { role: "admin", handle: async (r, context) => {
      try {
        checkTenantName(r.tenant);
      } catch (error) {
        throw invalidArgument((error as Error).message);
      }
      const roles = r.roles.map((x) => x.trim().toLowerCase());
      if (roles.length === 0 || roles.some((x) => !(ROLES as readonly string[]).includes(x))) {
        throw invalidArgument(`roles must be some of ${ROLES.join(", ")}; got [${r.roles.join(", ")}]`);
      }
      if (r.expiresInSeconds < 0n) throw invalidArgument("expires_in_seconds must be ≥ 0");
      const expiresMs = r.expiresInSeconds > 0n ? Date.now() + Number(r.expiresInSeconds) * 1000 : undefined;
      const { token, key } = await store().create({ tenant: r.tenant, roles: roles as Role[], name: r.name.slice(0, 200), expiresMs });
      audit?.record({ action: "CreateKey", outcome: "allowed", caller: context.caller, peer: context.peer, target: `key ${key.id} for tenant ${key.tenant} (${key.roles.join(",")})` });
      return { key: toWireKey(key), token };
    } },
    listKeys: { role: "admin", handle: async (r, context) => {
      audit?.record({ action: "ListKeys", outcome: "allowed", caller: context.caller, peer: context.peer, target: r.tenant || "all tenants" });
      return { keys: store().list(r.tenant || undefined).map(toWireKey) };
    } },
    revokeKey: { role: "admin", handle: async (r, context) => {
      if (!(await store().revoke(r.id))) throw notFound(`key "${r.id.slice(0, 40)}" not found`);
      audit?.record({ action: "RevokeKey", outcome: "allowed", caller: context.caller, peer: context.peer, target: `key ${r.id}` });
      return { key: toWireKey(store().list().find((k) => k.id === r.id)!) };
    } },
  });
}
