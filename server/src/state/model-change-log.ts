import type { Database } from "./database.js";

/** What a replica did to a model that every replica must do too. */
export type ModelAction = "load" | "unload";

export interface ModelChange {
  readonly seq: number;
  /** The tenant whose scope it was (undefined: the public repository). */
  readonly tenant: string | undefined;
  readonly model: string;
  readonly action: ModelAction;
  /** The replica that made it. */
  readonly replica: string;
}

/** Notified (payload: the change's sequence number) after each change is stored. */
const CHANNEL = "aiaas_model_changes";

interface ChangeRow {
  seq: string | number;
  tenant: string;
  model: string;
  action: string;
  replica: string;
}

const toChange = (r: ChangeRow): ModelChange => ({
  seq: Number(r.seq),
  tenant: r.tenant === "" ? undefined : r.tenant,
  model: r.model,
  action: r.action as ModelAction,
  replica: r.replica,
});

/**
 * The log of model control in the state database: a LoadModel, an UnloadModel or a version a job published on
 * one replica is appended and announced (NOTIFY), and every other replica applies it from the shared
 * repository. The log is also the desired state a replica starting later reads (a model unloaded stays so).
 */
export class ModelChangeLog {
  constructor(
    private readonly db: Database,
    private readonly replica: string,
  ) {}

  async append(tenant: string | undefined, model: string, action: ModelAction): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx.query<{ seq: string }>(
        `INSERT INTO model_changes (tenant, model, action, replica, at_ms) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
        [tenant ?? "", model, action, this.replica, Date.now()],
      );
      await tx.query(`SELECT pg_notify($1, $2)`, [CHANNEL, String(row!.seq)]);
    });
  }

  /** Changes after `seq` made by other replicas, in order, and the newest sequence number (this replica's changes count). */
  async after(seq: number): Promise<{ changes: ModelChange[]; seq: number }> {
    const rows = (await this.db.query<ChangeRow>(`SELECT seq, tenant, model, action, replica FROM model_changes WHERE seq > $1 ORDER BY seq`, [seq])).map(toChange);
    return { changes: rows.filter((c) => c.replica !== this.replica), seq: rows.reduce((max, c) => Math.max(max, c.seq), seq) };
  }

  /** The newest change of each model (the desired state), and the newest sequence number. */
  async latest(): Promise<{ changes: ModelChange[]; seq: number }> {
    const rows = await this.db.query<ChangeRow>(`SELECT DISTINCT ON (tenant, model) seq, tenant, model, action, replica FROM model_changes ORDER BY tenant, model, seq DESC`);
    const changes = rows.map(toChange);
    return { changes, seq: changes.reduce((max, c) => Math.max(max, c.seq), 0) };
  }

  /** Calls `wake` whenever changes may have been appended (and after a lost connection came back). */
  listen(wake: () => void): Promise<() => Promise<void>> {
    return this.db.listen(CHANNEL, () => wake());
  }
}
