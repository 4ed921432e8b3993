import type { Database } from "../state/index.js";
import type { Role } from "./caller.js";
import type { KeyDirectory, KeyInfo, KeyRecord, Limits, NewKey, Verdict } from "./key-directory.js";
import { checkTenantName, keyInfo, mintKey, verifyToken } from "./key-tokens.js";

/** Notified after every change of keys or tenant limits; each replica then reads them again. */
const CHANNEL = "aiaas_keys";

interface KeyRow {
  id: string;
  tenant: string;
  roles: string[];
  name: string;
  created_ms: string | number;
  expires_ms: string | number | null;
  revoked_ms: string | number | null;
  limits: Limits | null;
  hash: string;
}

const toRecord = (r: KeyRow): KeyRecord => ({
  id: r.id,
  tenant: r.tenant,
  roles: r.roles as Role[],
  name: r.name,
  createdMs: Number(r.created_ms),
  ...(r.expires_ms !== null ? { expiresMs: Number(r.expires_ms) } : {}),
  ...(r.revoked_ms !== null ? { revokedMs: Number(r.revoked_ms) } : {}),
  ...(r.limits ? { limits: r.limits } : {}),
  hash: r.hash,
});

/**
 * API keys and tenant limits in the state database, for replicas that share it: every replica keeps them all in
 * memory (a call's check never waits on the database) and reads them again when any replica changes them
 * (LISTEN/NOTIFY), so a key created or revoked through one replica holds on all of them within milliseconds.
 */
export class SqlKeyDirectory implements KeyDirectory {
  private byId = new Map<string, KeyRecord>();
  private limits = new Map<string, Limits>();
  private unlisten: (() => Promise<void>) | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private readonly listeners = new Set<() => void>();
  private readonly closers: (() => void)[] = [];

  private constructor(private readonly db: Database) {}

  static async open(db: Database): Promise<SqlKeyDirectory> {
    const directory = new SqlKeyDirectory(db);
    directory.unlisten = await db.listen(CHANNEL, () => void directory.reload().catch(() => undefined));
    await directory.reload();
    return directory;
  }

  /** Reads every key and limit again; calls that arrive while a read runs are served by one more read after it. */
  reload(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        const keys = await this.db.query<KeyRow>(`SELECT * FROM api_keys`);
        const limits = await this.db.query<{ tenant: string; limits: Limits }>(`SELECT tenant, limits FROM tenant_limits`);
        this.byId = new Map(keys.map((r) => [r.id, toRecord(r)]));
        this.limits = new Map(limits.map((r) => [r.tenant, r.limits]));
        for (const l of this.listeners) l();
      } while (this.again);
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  verify(token: string, now = Date.now()): Verdict {
    return verifyToken(token, (id) => this.byId.get(id), now);
  }

  current(id: string): KeyRecord | undefined {
    return this.byId.get(id);
  }

  tenantLimits(tenant: string): Limits | undefined {
    return this.limits.get(tenant);
  }

  list(tenant?: string): KeyInfo[] {
    return [...this.byId.values()].filter((k) => tenant === undefined || k.tenant === tenant).sort((a, b) => a.createdMs - b.createdMs).map(keyInfo);
  }

  async create(options: NewKey): Promise<{ token: string; key: KeyInfo }> {
    const { record, token } = mintKey(options);
    await this.write([record]);
    return { token, key: keyInfo(record) };
  }

  async revoke(id: string, tenant?: string): Promise<boolean> {
    const rows = await this.db.transaction(async (tx) => {
      const hit = await tx.query(`UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $2) WHERE id = $1 AND ($3::text IS NULL OR tenant = $3) RETURNING id`, [id, Date.now(), tenant ?? null]);
      await tx.query(`SELECT pg_notify($1, '')`, [CHANNEL]);
      return hit;
    });
    await this.reload();
    return rows.length > 0;
  }

  async setTenantLimits(tenant: string, limits: Limits): Promise<void> {
    checkTenantName(tenant);
    await this.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO tenant_limits (tenant, limits) VALUES ($1, $2) ON CONFLICT (tenant) DO UPDATE SET limits = EXCLUDED.limits`, [tenant, JSON.stringify(limits)]);
      await tx.query(`SELECT pg_notify($1, '')`, [CHANNEL]);
    });
    await this.reload();
  }

  /**
   * Adds keys made elsewhere (the `--keys` file every replica is given, to bootstrap the first admin key): new
   * ones are added, a revocation in either place stands, nothing else of a stored key changes.
   */
  async write(records: readonly KeyRecord[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const r of records) {
        await tx.query(
          `INSERT INTO api_keys (id, tenant, roles, name, created_ms, expires_ms, revoked_ms, limits, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (id) DO UPDATE SET revoked_ms = COALESCE(api_keys.revoked_ms, EXCLUDED.revoked_ms)`,
          [r.id, r.tenant, [...r.roles], r.name, r.createdMs, r.expiresMs ?? null, r.revokedMs ?? null, r.limits ? JSON.stringify(r.limits) : null, r.hash],
        );
      }
      await tx.query(`SELECT pg_notify($1, '')`, [CHANNEL]);
    });
    await this.reload();
  }

  /** Calls `listener` after every reload (a revocation elsewhere ends this replica's open streams of that key). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs `release` when the directory closes (the key file watched beside it). */
  onClose(release: () => void): void {
    this.closers.push(release);
  }

  close(): void {
    for (const c of this.closers) c();
    void this.unlisten?.().catch(() => undefined);
  }
}
