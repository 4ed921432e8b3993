import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { isSafeName } from "../common/names.js";
import { ROLES } from "./caller.js";
import type { KeyInfo, KeyRecord, NewKey, Verdict } from "./key-directory.js";

const PREFIX = "aiaas";
const TOKEN = /^aiaas_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/** A new key's record (its secret only as a hash) and its token, which is shown once and never stored. */
export function mintKey(options: NewKey): { record: KeyRecord; token: string } {
  checkTenantName(options.tenant);
  if (options.roles.length === 0 || options.roles.some((r) => !ROLES.includes(r))) {
    throw new Error(`roles must be some of ${ROLES.join(", ")}`);
  }
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const record: KeyRecord = {
    id,
    tenant: options.tenant,
    roles: [...new Set(options.roles)],
    name: options.name ?? "",
    createdMs: Date.now(),
    ...(options.expiresMs !== undefined ? { expiresMs: options.expiresMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    hash: sha256(secret).toString("hex"),
  };
  return { record, token: `${PREFIX}_${id}_${secret}` };
}

/**
 * Checks a bearer token against the key its id names (`lookup`): known, not revoked, not expired. Runs in
 * constant time over the secret, and hashes even for unknown ids, so timing does not tell which ids exist.
 */
export function verifyToken(token: string, lookup: (id: string) => KeyRecord | undefined, now = Date.now()): Verdict {
  const m = TOKEN.exec(token);
  if (!m) return { ok: false, reason: "malformed key" };
  const key = lookup(m[1]!);
  const presented = sha256(m[2]!);
  const stored = key ? Buffer.from(key.hash, "hex") : sha256("");
  const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
  if (!key || !equal) return { ok: false, reason: "unknown key" };
  if (key.revokedMs !== undefined) return { ok: false, reason: "revoked key" };
  if (key.expiresMs !== undefined && now >= key.expiresMs) return { ok: false, reason: "expired key" };
  return { ok: true, key };
}

/** A key as listed: everything but its hash. */
export const keyInfo = ({ hash: _hash, ...info }: KeyRecord): KeyInfo => info;

/** Tenant names become folder names (the tenant's model tree), so they follow the model-name rules. */
export function checkTenantName(tenant: string): string {
  if (!isSafeName(tenant)) {
    throw new Error(`invalid tenant name ${JSON.stringify(tenant.slice(0, 140))}: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return tenant;
}
