import { Job, JobState, TrainEvent, TrainSpec } from "@aiaas/sdk/gen";
import { Code, ServerError } from "../../common/errors.js";
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
  /** CancelJob reached another replica while this one did not run the job: cancel it on taking it up. */
  readonly cancelRequested: boolean;
  /** Its replica gave it up on purpose (handed over to the shared queue, or drained), rather than dying. */
  readonly released: boolean;
}

/** The notification channels of jobs: a job's new events (payload: its id), a cancel request (its id), a job free to take. */
export const JOB_CHANNELS = { events: "aiaas_job_events", cancel: "aiaas_job_cancel", free: "aiaas_jobs_free" } as const;

/**
 * This replica no longer holds the job's lease (another took the job over): what it would store is refused,
 * so two replicas never write one job's history.
 */
export class LeaseLostError extends ServerError {
  constructor(jobId: string) {
    super(Code.ABORTED, `job ${jobId} is run by another replica now`);
  }
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
  cancel_requested: boolean;
  owner: string | null;
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
  /**
   * @param replica this process's name in the `owner` column: it holds the lease of each job it runs.
   * @param leaseMs how long a lease lasts unless renewed; a replica that stops renewing (it died) loses its jobs.
   */
  constructor(
    private readonly db: Database,
    readonly replica: string = "local",
    readonly leaseMs = 10_000,
  ) {}

  /** Inserts a new job; false when its idempotency key is already taken (the caller attaches to that job). */
  async create(job: JobRecord, spec: TrainSpec, baseVersion: string): Promise<boolean> {
    const key = job.identity.idempotencyKey || null;
    const rows = await this.db.query(
      `INSERT INTO jobs (id, tenant, model, idempotency_key, state, spec, base_version, created_ms, updated_ms, summary, owner, lease_until_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11)
       ON CONFLICT (tenant, model, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id`,
      [job.id, tenantColumn(job.identity.tenant), job.identity.model, key, job.state, TrainSpec.encode(spec).finish(), baseVersion, job.created.getTime(), Job.encode(job.toWire()).finish(), this.replica, Date.now() + this.leaseMs],
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
      // The lease first: a replica that lost the job stores nothing (and its events would collide by id).
      const held = await tx.query(
        `UPDATE jobs SET state = COALESCE($2, state), updated_ms = $3, summary = $4, data_complete = data_complete OR $5 WHERE id = $1 AND owner = $6 RETURNING id`,
        [job.id, state ?? null, Number(last.timeUnixMs), Job.encode(summary).finish(), dataComplete, this.replica],
      );
      if (held.length === 0) throw new LeaseLostError(job.id);
      for (const e of events) {
        await tx.query(`INSERT INTO job_events (job_id, event_id, time_ms, event) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
          job.id,
          e.eventId.toString(),
          e.timeUnixMs.toString(),
          TrainEvent.encode(e).finish(),
        ]);
      }
      await tx.query(`SELECT pg_notify($1, $2)`, [JOB_CHANNELS.events, job.id]);
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
    return rows.map((r) => toStored(r, byJob.get(r.id) ?? []));
  }

  /** One job as stored (without its events), or undefined. */
  async find(id: string): Promise<StoredJob | undefined> {
    const [row] = await this.db.query<JobRow>(`SELECT * FROM jobs WHERE id = $1`, [id]);
    return row && toStored(row, []);
  }

  /** The job an idempotency key names in a tenant's model, or undefined. */
  async findByKey(tenant: string | undefined, model: string, key: string): Promise<StoredJob | undefined> {
    const [row] = await this.db.query<JobRow>(`SELECT * FROM jobs WHERE tenant = $1 AND model = $2 AND idempotency_key = $3`, [tenantColumn(tenant), model, key]);
    return row && toStored(row, []);
  }

  /** The newest `limit` jobs, of one tenant (`""`: the operator's) or of all when `tenant` is null. */
  async list(tenant: string | undefined | null, limit = 1000): Promise<StoredJob[]> {
    const rows = await this.db.query<JobRow>(
      `SELECT * FROM jobs WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_ms DESC, id DESC LIMIT $2`,
      [tenant === null ? null : tenantColumn(tenant), limit],
    );
    return rows.map((r) => toStored(r, []));
  }

  /** A job's events after `afterEventId`, in order. */
  async eventsAfter(jobId: string, afterEventId: number): Promise<TrainEvent[]> {
    const rows = await this.db.query<{ event: Uint8Array }>(`SELECT event FROM job_events WHERE job_id = $1 AND event_id > $2 ORDER BY event_id`, [jobId, afterEventId]);
    return rows.map((r) => TrainEvent.decode(r.event));
  }

  /** Extends this replica's leases; returns the ids of the open jobs it still holds. */
  async renewLeases(): Promise<Set<string>> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE jobs SET lease_until_ms = $2 WHERE owner = $1 AND state NOT IN (${TERMINAL.join(", ")}) RETURNING id`,
      [this.replica, Date.now() + this.leaseMs],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Takes the leases of open jobs nobody holds (never held, released, or expired: their replica died), or of
   * every open job when `all` (a server that knows it is alone, as the embedded database's lock proves): each
   * whose upload never completed (to end it), and at most `runnable` that have their data, oldest first. `only`
   * narrows it to one job. Two replicas claiming at once take different jobs (SKIP LOCKED).
   */
  async claim(options: { all?: boolean; runnable: number; only?: string }): Promise<StoredJob[]> {
    const claimed = await this.db.transaction(async (tx) => {
      const now = Date.now();
      const open = await tx.query<{ id: string; data_complete: boolean; owner: string | null }>(
        `SELECT id, data_complete, owner FROM jobs WHERE state NOT IN (${TERMINAL.join(", ")})
           AND ($1 OR owner IS NULL OR lease_until_ms < $2) AND ($3::text IS NULL OR id = $3)
         ORDER BY created_ms, id FOR UPDATE SKIP LOCKED`,
        [options.all ?? false, now, options.only ?? null],
      );
      let runnable = options.runnable;
      const taken = open.filter((r) => !r.data_complete || runnable-- > 0);
      const ids = taken.map((r) => r.id);
      if (ids.length > 0) await tx.query(`UPDATE jobs SET owner = $1, lease_until_ms = $2 WHERE id = ANY($3::text[])`, [this.replica, now + this.leaseMs, ids]);
      return { ids, released: new Set(taken.filter((r) => r.owner === null).map((r) => r.id)) };
    });
    if (claimed.ids.length === 0) return [];
    const rows = await this.db.query<JobRow>(`SELECT * FROM jobs WHERE id = ANY($1::text[]) ORDER BY created_ms, id`, [claimed.ids]);
    // As they were before this claim: given up on purpose (no owner) or lost.
    return (await this.withOpenEvents(rows)).map((job) => ({ ...job, released: claimed.released.has(job.id) }));
  }

  /** Takes every open job's lease: a server alone on its database (the embedded one) after a restart. */
  async claimAll(): Promise<void> {
    await this.db.query(`UPDATE jobs SET owner = $1, lease_until_ms = $2 WHERE state NOT IN (${TERMINAL.join(", ")})`, [this.replica, Date.now() + this.leaseMs]);
  }

  /** How many of a tenant's jobs have not ended. */
  async openCount(tenant: string | undefined): Promise<number> {
    const [row] = await this.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM jobs WHERE tenant = $1 AND state NOT IN (${TERMINAL.join(", ")})`, [tenantColumn(tenant)]);
    return Number(row?.n ?? 0);
  }

  /** The ids of the jobs that have not ended (their uploads are kept). */
  async openIds(): Promise<Set<string>> {
    const rows = await this.db.query<{ id: string }>(`SELECT id FROM jobs WHERE state NOT IN (${TERMINAL.join(", ")})`);
    return new Set(rows.map((r) => r.id));
  }

  /** Gives a job's lease up (a shutdown that suspended it): another replica may take it at once. */
  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE jobs SET owner = NULL, lease_until_ms = 0 WHERE id = ANY($1::text[]) AND owner = $2`, [[...ids], this.replica]);
      await tx.query(`SELECT pg_notify($1, '')`, [JOB_CHANNELS.free]);
    });
  }

  /** Records that a job is to be cancelled and tells the replica that runs it. */
  async requestCancel(id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE jobs SET cancel_requested = true WHERE id = $1`, [id]);
      await tx.query(`SELECT pg_notify($1, $2)`, [JOB_CHANNELS.cancel, id]);
    });
  }

  private async withOpenEvents(rows: JobRow[]): Promise<StoredJob[]> {
    const out: StoredJob[] = [];
    for (const r of rows) out.push(toStored(r, await this.eventsAfter(r.id, 0)));
    return out;
  }

  /** Whether a stored state is an end. */
  static ended(state: JobState): boolean {
    return TERMINAL.includes(state);
  }
}

function toStored(r: JobRow, events: readonly TrainEvent[]): StoredJob {
  return {
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
    events,
    cancelRequested: r.cancel_requested ?? false,
    released: r.owner === null,
  };
}
