import { Job, JobState, TrainEvent, TrainSpec } from "@aiaas/sdk/gen";
import type { Database } from "../../state/index.js";
import type { JobRecord } from "./train-job.js";

/** A job as the database holds it: enough to show its history, and to take it up again if it had not ended. */
export interface StoredJob {
  readonly id: string;
  readonly tenant: string | undefined;
  readonly model: string;
  readonly idempotencyKey: string;
  readonly state: JobState;
  readonly spec: TrainSpec;
  /** The base model's version the job resolved when it was submitted ("" for an architecture). */
  readonly baseVersion: string;
  readonly dataComplete: boolean;
  readonly created: Date;
  /** The job as GetJob showed it when its last event was stored. */
  readonly summary: Job;
  /** Its events, for a job that had not ended; an ended job's are read when a watcher asks (`events()`). */
  readonly events: readonly TrainEvent[];
}

interface JobRow {
  id: string;
  tenant: string;
  model: string;
  idempotency_key: string | null;
  state: number;
  spec: Uint8Array;
  base_version: string;
  data_complete: boolean;
  created_ms: string | number;
  summary: Uint8Array;
}

const TERMINAL = [JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED];
/** The operator's jobs have no tenant; stored as "", a name no tenant can have. */
const tenantColumn = (tenant: string | undefined): string => tenant ?? "";

/**
 * Jobs and their events in the state database (embedded PostgreSQL or a PostgreSQL server). A job is inserted
 * before the client hears of it; each batch of events is stored, with the job's state and summary, in one
 * transaction before watchers see it. The idempotency key is unique per tenant and model in the table, so
 * two submissions racing with one key get one job.
 */
export class SqlJobJournal {
  constructor(private readonly db: Database) {}

  /** Inserts a new job; false when its idempotency key is already taken (the caller attaches to that job). */
  async create(job: JobRecord, spec: TrainSpec, baseVersion: string): Promise<boolean> {
    const key = job.identity.idempotencyKey || null;
    const rows = await this.db.query(
      `INSERT INTO jobs (id, tenant, model, idempotency_key, state, spec, base_version, created_ms, updated_ms, summary)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
       ON CONFLICT (tenant, model, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id`,
      [job.id, tenantColumn(job.identity.tenant), job.identity.model, key, job.state, TrainSpec.encode(spec).finish(), baseVersion, job.created.getTime(), Job.encode(job.toWire()).finish()],
    );
    return rows.length === 1;
  }

  /** Stores events in order with the job's state as of the last of them. */
  readonly append = async (job: JobRecord, events: readonly TrainEvent[]): Promise<void> => {
    let state: JobState | undefined;
    for (const e of events) if (e.event?.$case === "state") state = e.event.value.state;
    const last = events[events.length - 1]!;
    const summary = { ...job.toWire(), lastEventId: last.eventId, ...(state === undefined ? {} : { state }) };
    const dataComplete = events.some((e) => e.event?.$case === "data");
    await this.db.transaction(async (tx) => {
      for (const e of events) {
        await tx.query(`INSERT INTO job_events (job_id, event_id, time_ms, event) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
          job.id,
          e.eventId.toString(),
          e.timeUnixMs.toString(),
          TrainEvent.encode(e).finish(),
        ]);
      }
      await tx.query(
        `UPDATE jobs SET state = COALESCE($2, state), updated_ms = $3, summary = $4, data_complete = data_complete OR $5 WHERE id = $1`,
        [job.id, state ?? null, Number(last.timeUnixMs), Job.encode(summary).finish(), dataComplete],
      );
    });
  };

  /** Frees a job's idempotency key, so a retry with it submits a new job (its upload never completed). */
  async releaseKey(id: string): Promise<void> {
    await this.db.query(`UPDATE jobs SET idempotency_key = NULL WHERE id = $1`, [id]);
  }

  /** One job's stored events, in order. */
  async events(jobId: string): Promise<TrainEvent[]> {
    const rows = await this.db.query<{ event: Uint8Array }>(`SELECT event FROM job_events WHERE job_id = $1 ORDER BY event_id`, [jobId]);
    return rows.map((r) => TrainEvent.decode(r.event));
  }

  /**
   * Every stored job, oldest first; the events of those that had not ended (an ended job's history is read
   * when someone watches it, so a start does not read every event ever stored).
   */
  async load(): Promise<StoredJob[]> {
    const rows = await this.db.query<JobRow>(`SELECT * FROM jobs ORDER BY created_ms, id`);
    const events = await this.db.query<{ job_id: string; event: Uint8Array }>(
      `SELECT e.job_id, e.event FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.state NOT IN (${TERMINAL.join(", ")}) ORDER BY e.job_id, e.event_id`,
    );
    const byJob = new Map<string, TrainEvent[]>();
    for (const e of events) {
      let list = byJob.get(e.job_id);
      if (!list) byJob.set(e.job_id, (list = []));
      list.push(TrainEvent.decode(e.event));
    }
    return rows.map((r) => ({
      id: r.id,
      tenant: r.tenant === "" ? undefined : r.tenant,
      model: r.model,
      idempotencyKey: r.idempotency_key ?? "",
      state: r.state as JobState,
      spec: TrainSpec.decode(r.spec),
      baseVersion: r.base_version,
      dataComplete: r.data_complete,
      created: new Date(Number(r.created_ms)),
      summary: Job.decode(r.summary),
      events: byJob.get(r.id) ?? [],
    }));
  }

  /** Whether a stored state is an end. */
  static ended(state: JobState): boolean {
    return TERMINAL.includes(state);
  }
}
