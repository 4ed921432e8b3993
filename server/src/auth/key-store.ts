import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { isSafeName } from "../common/names.js";
import { ROLES, type Role } from "./caller.js";
import type { KeyDirectory, KeyInfo, KeyRecord, Limits, Verdict } from "./key-directory.js";

export type { KeyInfo, KeyRecord, Limits, Verdict } from "./key-directory.js";

interface StoreFile {
  readonly version: 1;
  readonly keys: KeyRecord[];
  readonly tenants: Record<string, { limits?: Limits }>;
}

const PREFIX = "aiaas";
const TOKEN = /^aiaas_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();


/**
 * API keys in a JSON file: long random tokens, stored as sha256 hashes only, compared in constant time. Each
 * key belongs to a tenant, carries roles, may expire and can be revoked. Changes are written atomically
 * (temporary file, fsync, rename, mode 0600); the server notices changes made by other processes (the
 * `aiaas keys` command on the same file) and reloads.
 */
export class KeyStore implements KeyDirectory {
  private data: StoreFile = { version: 1, keys: [], tenants: {} };
  private byId = new Map<string, KeyRecord>();
  private watcher: FSWatcher | undefined;
  private writing = Promise.resolve();
  private loadedMtimeMs = 0;

  private constructor(readonly path: string) {}

  static async open(path: string, options: { watch?: boolean } = {}): Promise<KeyStore> {
    const store = new KeyStore(path);
    await store.reload();
    if (options.watch) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      // Watch the folder: an atomic rename replaces the file, which a watch on the file itself would lose, and a
      // Kubernetes Secret volume swaps a "..data" symlink instead of touching the file's own name.
      let pending: NodeJS.Timeout | undefined;
      store.watcher = watch(dirname(path), () => {
        pending ??= setTimeout(() => {
          pending = undefined;
          void store.reload().catch(() => undefined);
        }, 20);
      });
      store.watcher.unref();
    }
    return store;
  }

  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    this.apply(text);
  }

  private apply(text: string): void {
    const parsed = JSON.parse(text) as StoreFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.keys)) throw new Error(`${this.path} is not an aiaas key store`);
    this.data = { version: 1, keys: parsed.keys, tenants: parsed.tenants ?? {} };
    this.byId = new Map(parsed.keys.map((k) => [k.id, k]));
    try {
      this.loadedMtimeMs = statSync(this.path).mtimeMs;
    } catch {
      // written by us and not yet renamed into place
    }
  }

  /** A key id we do not know may have been added by another process a moment ago: reload if the file changed. */
  private refreshIfChanged(): void {
    try {
      if (statSync(this.path).mtimeMs !== this.loadedMtimeMs) this.apply(readFileSync(this.path, "utf8"));
    } catch {
      // keep what we have
    }
  }

  close(): void {
    this.watcher?.close();
  }

  /** Checks a bearer token: known, not revoked, not expired. Runs in constant time over the secret. */
  verify(token: string, now = Date.now()): Verdict {
    const m = TOKEN.exec(token);
    if (!m) return { ok: false, reason: "malformed key" };
    if (!this.byId.has(m[1]!)) this.refreshIfChanged();
    const key = this.byId.get(m[1]!);
    // Hash even for unknown ids, so timing does not tell which ids exist.
    const presented = sha256(m[2]!);
    const stored = key ? Buffer.from(key.hash, "hex") : sha256("");
    const equal = stored.length === presented.length && timingSafeEqual(stored, presented);
    if (!key || !equal) return { ok: false, reason: "unknown key" };
    if (key.revokedMs !== undefined) return { ok: false, reason: "revoked key" };
    if (key.expiresMs !== undefined && now >= key.expiresMs) return { ok: false, reason: "expired key" };
    return { ok: true, key };
  }

  /** The key record as it is now (revocations made since a call began show here). */
  current(id: string): KeyRecord | undefined {
    return this.byId.get(id);
  }

  tenantLimits(tenant: string): Limits | undefined {
    return this.data.tenants[tenant]?.limits;
  }

  list(tenant?: string): KeyInfo[] {
    return this.data.keys.filter((k) => tenant === undefined || k.tenant === tenant).map(({ hash: _hash, ...info }) => info);
  }

  /** Creates a key; the token is returned once and never stored. */
  async create(options: { tenant: string; roles: readonly Role[]; name?: string; expiresMs?: number; limits?: Limits }): Promise<{ token: string; key: KeyInfo }> {
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
    await this.update((keys) => [...keys, record]);
    const { hash: _hash, ...key } = record;
    return { token: `${PREFIX}_${id}_${secret}`, key };
  }

  /** Revokes a key at once; false when there is no such key (of that tenant, when given). */
  async revoke(id: string, tenant?: string): Promise<boolean> {
    const key = this.byId.get(id);
    if (!key || (tenant !== undefined && key.tenant !== tenant)) return false;
    if (key.revokedMs === undefined) await this.update((keys) => keys.map((k) => (k.id === id ? { ...k, revokedMs: Date.now() } : k)));
    return true;
  }

  async setTenantLimits(tenant: string, limits: Limits): Promise<void> {
    checkTenantName(tenant);
    this.data = { ...this.data, tenants: { ...this.data.tenants, [tenant]: { limits } } };
    await this.update((keys) => keys);
  }

  private update(change: (keys: KeyRecord[]) => KeyRecord[]): Promise<void> {
    const run = this.writing.then(async () => {
      await this.reload(); // another process may have changed the file
      const next: StoreFile = { version: 1, keys: change(this.data.keys), tenants: this.data.tenants };
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      const temp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
      const file = await open(temp, "w", 0o600);
      try {
        await file.writeFile(JSON.stringify(next, null, 2) + "\n");
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, this.path);
      this.data = next;
      this.byId = new Map(next.keys.map((k) => [k.id, k]));
      this.loadedMtimeMs = statSync(this.path).mtimeMs;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }
}

/** Tenant names become folder names, so they follow the model-name rules. */
export function checkTenantName(tenant: string): string {
  // Tenant names become folder names too (the tenant's model tree).
  if (!isSafeName(tenant)) {
    throw new Error(`invalid tenant name ${JSON.stringify(tenant.slice(0, 140))}: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return tenant;
}
