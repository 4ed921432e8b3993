import type { Role } from "./caller.js";

/** Per-tenant (or per-key) limits; absent fields mean the server's defaults. */
export interface Limits {
  /** Requests per second (token bucket refill) and the bucket size. */
  readonly requestsPerSecond?: number;
  readonly burst?: number;
  /** Calls running at once. */
  readonly maxInFlight?: number;
  /** Training jobs queued or running at once. */
  readonly maxConcurrentJobs?: number;
  /** Largest upload of one training job. */
  readonly maxTrainDataBytes?: number;
}

export interface KeyRecord {
  readonly id: string;
  readonly tenant: string;
  readonly roles: readonly Role[];
  /** A label for people ("ci deploy key"). */
  readonly name: string;
  readonly createdMs: number;
  /** Unix ms after which the key stops working; absent: never. */
  readonly expiresMs?: number;
  readonly revokedMs?: number;
  readonly limits?: Limits;
  /** sha256 of the secret, hex. The secret itself is never stored. */
  readonly hash: string;
}

export type KeyInfo = Omit<KeyRecord, "hash">;

/** What a new key is made of. */
export interface NewKey {
  readonly tenant: string;
  readonly roles: readonly Role[];
  readonly name?: string;
  readonly expiresMs?: number;
  readonly limits?: Limits;
}

export type Verdict = { readonly ok: true; readonly key: KeyRecord } | { readonly ok: false; readonly reason: string };

/**
 * The API keys as the rest of the server uses them: verify a token, look a key up, list, create, revoke, and
 * the tenants' limits. The file-backed KeyStore is one implementation; a shared one (a database every replica
 * reads) can take its place without touching the authenticator, quotas or the Admin service.
 */
export interface KeyDirectory {
  /** Checks a bearer token: known, not revoked, not expired; in constant time over the secret. */
  verify(token: string, now?: number): Verdict;
  /** The key record as it is now (revocations made since a call began show here). */
  current(id: string): KeyRecord | undefined;
  tenantLimits(tenant: string): Limits | undefined;
  list(tenant?: string): KeyInfo[];
  create(options: NewKey): Promise<{ token: string; key: KeyInfo }>;
  /** False when there is no such key (of that tenant, when given). */
  revoke(id: string, tenant?: string): Promise<boolean>;
  setTenantLimits(tenant: string, limits: Limits): Promise<void>;
  /** Calls `listener` whenever keys may have changed (revoked elsewhere); returns the unsubscribe. */
  onChange?(listener: () => void): () => void;
  close(): void;
}
