import { JobState, type Job, type JobFailed, type TrainEvent } from "@aiaas/sdk/gen";
import { onAbort } from "../../common/abort-listeners.js";
import { notFound } from "../../common/errors.js";
import type { Database } from "../../state/index.js";
import { JOB_CHANNELS, SqlJobJournal, type StoredJob } from "./sql-job-journal.js";

/** A job as GetJob, ListJobs and WatchJob show it, wherever it runs: this process (a JobRecord) or another replica. */
export interface JobView {
  readonly id: string;
  readonly tenant: string | undefined;
  readonly state: JobState;
  readonly error: JobFailed | undefined;
  readonly terminal: boolean;
  toWire(): Job;
  /** Every stored event after `after`, then new ones as they are stored, until the job ends or `signal` aborts. */
  watch(after: number, signal: AbortSignal): AsyncGenerator<TrainEvent>;
}

/** A fallback re-read while following a job, should a notification be lost in transit (it is not polling: they normally arrive first). */
const RECHECK_MS = 15_000;

/**
 * One LISTEN for the process on the job-events channel, handing each notification to the followers of that
 * job. A notification names the job whose events were stored; followers read what is new from the database.
 */
export class JobFeed {
  private readonly followers = new Map<string, Set<() => void>>();
  private unlisten: Promise<() => Promise<void>> | undefined;

  constructor(private readonly db: Database) {}

  /** Calls `wake` whenever `jobId` may have new events; returns the unsubscribe. */
  async follow(jobId: string, wake: () => void): Promise<() => void> {
    this.unlisten ??= this.db.listen(JOB_CHANNELS.events, (payload) => {
      if (payload === undefined) for (const set of this.followers.values()) for (const w of set) w();
      else for (const w of this.followers.get(payload) ?? []) w();
    });
    await this.unlisten;
    let set = this.followers.get(jobId);
    if (!set) this.followers.set(jobId, (set = new Set()));
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.followers.get(jobId) === set) this.followers.delete(jobId);
    };
  }

  async close(): Promise<void> {
    const unlisten = await this.unlisten?.catch(() => undefined);
    await unlisten?.();
  }
}

/** A job read from the database: what another replica (or an earlier run) stored, followed live through the feed. */
export class StoredJobView implements JobView {
  private summary: Job;
  private stateNow: JobState;

  constructor(
    stored: Pick<StoredJob, "id" | "tenant" | "state" | "summary">,
    private readonly journal: SqlJobJournal,
    private readonly feed: JobFeed,
  ) {
    this.id = stored.id;
    this.tenant = stored.tenant;
    this.summary = stored.summary;
    this.stateNow = stored.state;
  }

  readonly id: string;
  readonly tenant: string | undefined;

  get state(): JobState {
    return this.stateNow;
  }

  get error(): JobFailed | undefined {
    return this.summary.error;
  }

  get terminal(): boolean {
    return SqlJobJournal.ended(this.stateNow);
  }

  toWire(): Job {
    return { ...this.summary, state: this.stateNow };
  }

  async *watch(after: number, signal: AbortSignal): AsyncGenerator<TrainEvent> {
    let dirty = true;
    let wake: (() => void) | undefined;
    const unfollow = await this.feed.follow(this.id, () => {
      dirty = true;
      wake?.();
    });
    let next = Math.max(0, after);
    try {
      while (!signal.aborted) {
        if (dirty) {
          dirty = false;
          const events = await this.journal.eventsAfter(this.id, next);
          for (const e of events) {
            next = Number(e.eventId);
            yield e;
          }
          if (events.length > 0) {
            dirty = true; // read once more: there may be more, or the end
            continue;
          }
          // Nothing new: the job may have ended (its last event was before `after`).
          await this.refresh();
          if (this.terminal && (await this.journal.eventsAfter(this.id, next)).length === 0) return;
          if (dirty) continue;
        }
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            unsubscribe();
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(() => {
            dirty = true;
            done();
          }, RECHECK_MS);
          const unsubscribe = onAbort(signal, done);
          wake = done;
        });
      }
    } finally {
      unfollow();
    }
  }

  /** Reads the job's summary again (state, step, result). */
  async refresh(): Promise<void> {
    const stored = await this.journal.find(this.id);
    if (!stored) throw notFound(`job "${this.id}" not found`);
    this.summary = stored.summary;
    this.stateNow = stored.state;
  }
}
