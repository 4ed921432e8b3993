import type { Logger } from "pino";
import type { Database } from "../state/index.js";
import type { AuditEntry } from "./audit-log.js";

/** Entries kept for the next write at most: a flood of denied calls must not grow memory or load the database. */
const MAX_BUFFERED = 1000;
const FLUSH_MS = 1000;

/**
 * The audit trail in the state database (`audit_events`), beside the log lines: every replica's entries in one
 * place. Entries are written in one statement per second; past 1,000 waiting, new ones are counted, not kept
 * (the log still has them), so denied calls cannot be turned into database load.
 */
export class SqlAuditStore {
  private buffer: { at: number; entry: AuditEntry }[] = [];
  private dropped = 0;
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly replica: string,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  add(entry: AuditEntry): void {
    if (this.buffer.length >= MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    this.buffer.push({ at: Date.now(), entry });
  }

  /** Writes what waits (one INSERT). */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      const batch = this.buffer;
      this.buffer = [];
      if (this.dropped > 0) {
        this.logger.warn({ audit: true, dropped: this.dropped }, `${this.dropped} audit entries were not stored in the database (over ${MAX_BUFFERED} a second); they are in the log`);
        this.dropped = 0;
      }
      if (batch.length === 0) return;
      const params: unknown[] = [];
      const rows = batch.map(({ at, entry }, i) => {
        params.push(at, this.replica, entry.action, entry.outcome, entry.caller?.keyId ?? null, entry.caller?.tenant ?? null, entry.peer ?? null, entry.target ?? null, entry.reason ?? null);
        return `(${Array.from({ length: 9 }, (_, j) => `$${i * 9 + j + 1}`).join(", ")})`;
      });
      await this.db
        .query(`INSERT INTO audit_events (at_ms, replica, action, outcome, key_id, tenant, peer, target, reason) VALUES ${rows.join(", ")}`, params)
        .catch((error: unknown) => this.logger.error({ err: error, entries: batch.length }, "could not store audit entries in the database (they are in the log)"));
    });
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
