import { readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { mkdir, open, rename, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { KeyDirectory, KeyInfo, KeyRecord, Limits, NewKey, Verdict } from "./key-directory.js";
import { checkTenantName, keyInfo, mintKey, verifyToken } from "./key-tokens.js";

export type { KeyInfo, KeyRecord, Limits, Verdict } from "./key-directory.js";

interface StoreFile {
  readonly version: 1;
  readonly keys: KeyRecord[];
  readonly tenants: Record<string, { limits?: Limits }>;
}

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
  // Which file was loaded: its inode, size and modification time. Every write is a rename onto a new inode,
  // and two writes within one tick of the kernel's coarse clock share an mtime, so the mtime alone can miss one.
  private loadedVersion = "";
  private readonly listeners = new Set<() => void>();

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

  /**
   * Reads the file again. Queued behind this store's own writes, so a reload that began before a write (a
   * revocation) can never apply the older file after it.
   */
  reload(): Promise<void> {
    const run = this.writing.then(() => this.readAndApply());
    this.writing = run.catch(() => undefined);
    return run;
  }

  /**
   * One read: the content and the identity of the same file, applied only if that file is still the one at
   * the path. A write by another process renames a new file over it; a read begun on the old one (a watch
   * event comes as the temporary file is made) would otherwise apply the old keys after a lookup had already
   * loaded the new ones, and end a stream whose key was just added as "unknown". Read again then.
   */
  private async readAndApply(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const read = await this.readOnce();
      if (!read) return;
      let current: string | undefined;
      try {
        current = versionOf(await stat(this.path));
      } catch {
        current = undefined;
      }
      if (current === read.version) {
        this.apply(read.text, read.version);
        return;
      }
    }
  }

  private async readOnce(): Promise<{ text: string; version: string } | undefined> {
    let file;
    try {
      file = await open(this.path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    try {
      const stats = await file.stat();
      return { text: await file.readFile("utf8"), version: versionOf(stats) };
    } finally {
      await file.close();
    }
  }

  private apply(text: string, version: string): void {
    const parsed = JSON.parse(text) as StoreFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.keys)) throw new Error(`${this.path} is not an aiaas key store`);
    this.data = { version: 1, keys: parsed.keys, tenants: parsed.tenants ?? {} };
    this.byId = new Map(parsed.keys.map((k) => [k.id, k]));
    this.loadedVersion = version;
    this.changed();
  }

  /** A key id we do not know may have been added by another process a moment ago: reload if the file changed. */
  private refreshIfChanged(): void {
    try {
      const version = versionOf(statSync(this.path));
      if (version !== this.loadedVersion) this.apply(readFileSync(this.path, "utf8"), version);
    } catch {
      // keep what we have
    }
  }

  close(): void {
    this.watcher?.close();
  }

  /** Calls `listener` after every load of the file (a key revoked by `aiaas keys` ends the open streams of that key). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every key record and the tenants' limits, as the file holds them now. */
  snapshot(): { readonly keys: readonly KeyRecord[]; readonly tenants: Readonly<Record<string, { limits?: Limits }>> } {
    return { keys: this.data.keys, tenants: this.data.tenants };
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Checks a bearer token: known, not revoked, not expired. Runs in constant time over the secret. */
  verify(token: string, now = Date.now()): Verdict {
    return verifyToken(token, (id) => {
      if (!this.byId.has(id)) this.refreshIfChanged();
      return this.byId.get(id);
    }, now);
  }

  /** The key record as it is now (revocations made since a call began show here). */
  current(id: string): KeyRecord | undefined {
    return this.byId.get(id);
  }

  tenantLimits(tenant: string): Limits | undefined {
    return this.data.tenants[tenant]?.limits;
  }

  list(tenant?: string): KeyInfo[] {
    return this.data.keys.filter((k) => tenant === undefined || k.tenant === tenant).map(keyInfo);
  }

  /** Creates a key; the token is returned once and never stored. */
  async create(options: NewKey): Promise<{ token: string; key: KeyInfo }> {
    const { record, token } = mintKey(options);
    await this.update((keys) => [...keys, record]);
    return { token, key: keyInfo(record) };
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
      await this.readAndApply(); // another process may have changed the file
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
      this.loadedVersion = versionOf(statSync(this.path));
      this.changed();
    });
    this.writing = run.catch(() => undefined);
    return run;
  }
}

const versionOf = (stats: { ino: number; size: number; mtimeMs: number }): string => `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
