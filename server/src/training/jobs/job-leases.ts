import type { Logger } from "pino";
import type { Database } from "../../state/index.js";
import { JOB_CHANNELS, type SqlJobJournal, type StoredJob } from "./sql-job-journal.js";

/** What the lease keeper asks of the job manager of its replica. */
export interface LeaseHolder {
  /** Training slots free here now. */
  freeSlots(): number;
  /** Runs (or ends) jobs whose leases this replica just took. */
  takeUp(jobs: readonly StoredJob[]): Promise<void>;
  /** A cancel request arrived for a job; cancels it when it runs here. */
  cancelRequested(id: string): void;
  /** The open jobs whose leases this replica still holds, as of `asOf`: others it took before then were taken over. */
  held(ids: ReadonlySet<string>, asOf: number): void;
}

/**
 * Job leases between replicas sharing a PostgreSQL database: every quarter lease this replica renews the leases
 * of the jobs it runs and takes jobs nobody holds (a replica died or shut down) while it has free slots. A
 * released job or a freed slot triggers a claim at once (a notification), so the interval only bounds how
 * long a dead replica's jobs wait: about one lease.
 */
export class JobLeases {
  private timer: NodeJS.Timeout | undefined;
  private readonly unlisten: Promise<() => Promise<void>>[] = [];
  private claiming: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly journal: SqlJobJournal,
    private readonly db: Database,
    private readonly holder: LeaseHolder,
    private readonly logger: Logger,
  ) {}

  /** Starts renewing and claiming; the first claim has run when it resolves. */
  async start(): Promise<void> {
    this.unlisten.push(this.db.listen(JOB_CHANNELS.cancel, (id) => id && this.holder.cancelRequested(id)));
    this.unlisten.push(this.db.listen(JOB_CHANNELS.free, () => void this.claim()));
    await Promise.all(this.unlisten);
    this.timer = setInterval(() => void this.tick(), Math.max(50, this.journal.leaseMs / 4));
    this.timer.unref();
    await this.claim();
  }

  /** Takes the jobs nobody holds, as many as there are free slots (one at a time per replica). */
  claim(only?: string): Promise<void> {
    const run = this.claiming.then(async () => {
      if (this.stopped) return;
      const free = this.holder.freeSlots();
      const jobs = await this.journal.claim({ runnable: free, ...(only ? { only } : {}) });
      if (jobs.length === 0) return;
      this.logger.info({ jobs: jobs.map((j) => j.id) }, `took up ${jobs.length} training job(s) that no replica held`);
      await this.holder.takeUp(jobs);
    });
    this.claiming = run.catch((error: unknown) => this.logger.error({ err: error }, "could not claim training jobs"));
    return this.claiming;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.claiming;
    for (const u of this.unlisten) await (await u.catch(() => undefined))?.().catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const asOf = Date.now();
      this.holder.held(await this.journal.renewLeases(), asOf);
    } catch (error) {
      this.logger.warn({ err: error }, "could not renew the leases of training jobs (the database is unreachable?)");
      return;
    }
    await this.claim();
  }
}
