import type { BatchRequest } from "./batch-request.js";

/** What the queue holds: a request, when it arrived, and where it is in its life. */
export interface QueueEntry {
  readonly request: BatchRequest;
  readonly enqueuedAt: number;
  state: "queued" | "running" | "done";
}

/** Lower is more urgent; requests without a priority come after every prioritized one. */
const urgency = (entry: QueueEntry): number => {
  const priority = entry.request.priority ?? 0;
  return priority > 0 ? priority : Infinity;
};

const tenantOf = (entry: QueueEntry): string => entry.request.tenant ?? "";

/**
 * The waiting requests of one batcher, in arrival order, shared fairly between tenants and ordered by
 * priority. Entries that leave (cancelled, expired, started) stay behind as tombstones until a compaction,
 * so leaving is O(1). Expiry is reported through a callback: the queue decides when, the batcher how.
 */
export class RequestQueue<E extends QueueEntry> {
  private entries: E[] = [];
  private tombstones = 0;
  private live = 0;
  private prioritized = 0;
  /** Queued requests per tenant. */
  private readonly queuedByTenant = new Map<string, number>();
  /**
   * Rows each tenant has had run (virtual time). While requests of two or more tenants wait, the batch
   * head is the oldest request of the tenant served least, so one tenant's flood cannot make another's
   * requests wait behind all of it.
   */
  private readonly served = new Map<string, number>();

  /** `tenantCap`: at most this many queued requests of one tenant, so others always find room. */
  constructor(private readonly tenantCap: number) {}

  get size(): number {
    return this.live;
  }

  /** Whether a request of this tenant fits under its share of the queue. */
  hasRoomFor(tenant: string | undefined): boolean {
    return tenant === undefined || (this.queuedByTenant.get(tenant) ?? 0) < this.tenantCap;
  }

  push(entry: E): void {
    this.entries.push(entry);
    this.join(tenantOf(entry));
    this.live++;
    if (urgency(entry) !== Infinity) this.prioritized++;
  }

  /** Takes a queued entry out without running it (cancelled, expired); the caller changes its state. */
  remove(entry: E): void {
    this.live--;
    this.tombstones++;
    if (urgency(entry) !== Infinity) this.prioritized--;
    this.leave(tenantOf(entry));
  }

  /** The entry the next batch is built around, or undefined when none waits. Expires what it passes. */
  head(now: number, expire: (entry: E) => void): E | undefined {
    this.dropLeadingDead(now, expire);
    if (this.entries.length === 0) return undefined;
    let head = this.queuedByTenant.size > 1 ? this.fairestHead() : this.entries[0];
    if (this.prioritized > 0) {
      for (const entry of this.entries) {
        if (entry.state !== "queued" || urgency(entry) >= urgency(head)) continue;
        if (now >= entry.request.deadline) expire(entry);
        else head = entry;
      }
    }
    return head;
  }

  /** Queued entries that may share a batch with `head` (same key), in order, up to `maxRows` rows in all. */
  fill(head: E, maxRows: number, now: number, expire: (entry: E) => void): { batch: E[]; rows: number } {
    const batch = [head];
    let rows = head.request.rows;
    for (let i = 0; i < this.entries.length && rows < maxRows; i++) {
      const entry = this.entries[i];
      if (entry === head || entry.state !== "queued" || entry.request.key !== head.request.key) continue;
      if (now >= entry.request.deadline) {
        expire(entry);
        continue;
      }
      if (rows + entry.request.rows > maxRows) continue;
      batch.push(entry);
      rows += entry.request.rows;
    }
    return { batch, rows };
  }

  /** Moves a formed batch out of the queue: its entries are running, their tenants charged their rows. */
  start(batch: readonly E[]): void {
    for (const entry of batch) {
      this.remove(entry);
      entry.state = "running";
      const tenant = tenantOf(entry);
      this.served.set(tenant, (this.served.get(tenant) ?? 0) + entry.request.rows);
    }
    if (this.tombstones > 32 && this.tombstones * 2 > this.entries.length) {
      this.entries = this.entries.filter((entry) => entry.state === "queued");
      this.tombstones = 0;
    }
  }

  private dropLeadingDead(now: number, expire: (entry: E) => void): void {
    let index = 0;
    for (; index < this.entries.length; index++) {
      const entry = this.entries[index];
      if (entry.state !== "queued") continue;
      if (now < entry.request.deadline) break;
      expire(entry);
    }
    if (index > 0) {
      this.entries = this.entries.slice(index);
      this.tombstones = this.entries.reduce((n, entry) => n + (entry.state === "queued" ? 0 : 1), 0);
    }
  }

  /** The oldest request of each waiting tenant, and of those the one whose tenant was served least. */
  private fairestHead(): E {
    const firsts = new Map<string, E>();
    for (let i = 0; i < this.entries.length && firsts.size < this.queuedByTenant.size; i++) {
      const entry = this.entries[i];
      if (entry.state === "queued" && !firsts.has(tenantOf(entry))) firsts.set(tenantOf(entry), entry);
    }
    let head = this.entries[0];
    let least = Infinity;
    for (const [tenant, entry] of firsts) {
      const served = this.served.get(tenant) ?? 0;
      if (served < least) {
        least = served;
        head = entry;
      }
    }
    return head;
  }

  /** A tenant that returns after idling starts level with the others instead of with a credit to spend. */
  private join(tenant: string): void {
    const n = this.queuedByTenant.get(tenant) ?? 0;
    if (n === 0) {
      let floor = Infinity;
      for (const t of this.queuedByTenant.keys()) floor = Math.min(floor, this.served.get(t) ?? 0);
      this.served.set(tenant, Math.max(this.served.get(tenant) ?? 0, floor === Infinity ? 0 : floor));
    }
    this.queuedByTenant.set(tenant, n + 1);
  }

  private leave(tenant: string): void {
    const n = (this.queuedByTenant.get(tenant) ?? 1) - 1;
    if (n <= 0) this.queuedByTenant.delete(tenant);
    else this.queuedByTenant.set(tenant, n);
  }
}
