import { createHash, timingSafeEqual } from "node:crypto";
import type { KeyDirectory } from "./key-directory.js";

export interface MetricsAccessOptions {
  /** A token for scrapers (Prometheus' `authorization.credentials_file`). */
  readonly token?: string;
  /** Serve /metrics to anyone even when tenants exist: the operator's explicit choice. */
  readonly public?: boolean;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Who may read /metrics, whose series name every tenant and its models. With API keys on, a scrape needs
 * `authorization: Bearer` with the metrics token or an admin key, unless the operator made the endpoint
 * public; without keys (one operator, no tenants) it is open unless a metrics token is set. Undefined:
 * anyone may.
 */
export function metricsAccess(keys: KeyDirectory | undefined, options: MetricsAccessOptions): ((authorization: string | undefined) => boolean) | undefined {
  const expected = options.token ? digest(options.token) : undefined;
  if (!expected && (!keys || options.public)) return undefined;
  return (authorization) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
    if (!token) return false;
    // Compared as digests: constant time whatever the lengths.
    if (expected && timingSafeEqual(digest(token), expected)) return true;
    if (!keys) return false;
    const verdict = keys.verify(token);
    return verdict.ok && verdict.key.roles.includes("admin");
  };
}
