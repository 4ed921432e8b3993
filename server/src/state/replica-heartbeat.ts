import type { Database } from "./database.js";

/** How often a replica says it is alive, and how long one that stopped saying so counts as alive. */
const BEAT_MS = 2000;
const ALIVE_MS = 3 * BEAT_MS;

/**
 * The replicas sharing the database: each one's row is touched every two seconds and removed when it stops;
 * `count()` is how many beat within the last six seconds (as of the last beat: never a query on a call's path).
 */
export class ReplicaHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private alive = 1;

  private constructor(
    private readonly db: Database,
    readonly replica: string,
  ) {}

  static async start(db: Database, replica: string): Promise<ReplicaHeartbeat> {
    const heartbeat = new ReplicaHeartbeat(db, replica);
    await heartbeat.beat();
    heartbeat.timer = setInterval(() => void heartbeat.beat().catch(() => undefined), BEAT_MS);
    heartbeat.timer.unref();
    return heartbeat;
  }

  /** Replicas alive (this one included). */
  count(): number {
    return this.alive;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.db.query(`DELETE FROM replicas WHERE id = $1`, [this.replica]).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    await this.db.query(
      `INSERT INTO replicas (id, started_ms, heartbeat_ms) VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms`,
      [this.replica, now],
    );
    const [row] = await this.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM replicas WHERE heartbeat_ms > $1`, [now - ALIVE_MS]);
    this.alive = Math.max(1, Number(row?.n ?? 1));
  }
}
