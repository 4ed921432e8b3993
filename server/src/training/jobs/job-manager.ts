import { JobState, type TrainSpec } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import { crashPoint } from "../../common/crash-points.js";
import { Code, ServerError, invalidArgument, notFound, resourceExhausted, unavailable } from "../../common/errors.js";
import type { ProviderName } from "../../runtime/index.js";
import type { RepositoryLock } from "../../repository/index.js";
import type { ModelRegistry } from "../../serving/index.js";
import { CheckpointStore } from "./checkpoint-store.js";
import type { DataWriter } from "./data-journal.js";
import type { DurableJobs } from "./durable-jobs.js";
import { planJob, preparedEvent } from "./job-builder.js";
import { JobData, type DecodedChunk } from "./job-data.js";
import { parseJobSpec } from "./job-spec.js";
import { restoreJobs } from "./job-restore.js";
import { runJob } from "./run-job.js";
import { createMemoryJobStore, idempotencyScope, type JobStore } from "./job-store.js";
import { JobLeases } from "./job-leases.js";
import { StoredJobView, type JobView } from "./job-view.js";
import { LeaseLostError, type StoredJob } from "./sql-job-journal.js";
import { TrainJob, type JobRecord } from "./train-job.js";

export interface JobManagerOptions {
  /** Where checkpoints are written (kept after a job ends, for resume_from). */
  readonly checkpointsDir: string;
  /** Jobs training at once; others wait QUEUED. */
  readonly maxConcurrentJobs: number;
  /** ORT intra-op threads of each job's training session. */
  readonly threads: number;
  readonly providers: readonly ProviderName[];
  /** Upper bound on one job's uploaded data. */
  readonly maxDataBytes: number;
  readonly logger: Logger;
  /** Where jobs are kept (default: in memory, the newest 1,000). */
  readonly store?: JobStore;
  /**
   * Jobs that outlive the process: each job and event stored in the state database before it is
   * acknowledged, uploaded data kept on disk until the job ends, and on start every job that had not ended
   * taken up again. Absent: jobs live in memory and a shutdown cancels them.
   */
  readonly durable?: DurableJobs;
  /** Called when a job published a version (replicas sharing the repository load it too). */
  readonly onPublished?: (tenant: string | undefined, model: string) => void;
}


/** Who submits a job: the tenant that will own it, the models it reaches, and its own limits. */
export interface JobOwner {
  readonly tenant: string | undefined;
  /** The caller's view of the repository: base models resolve in it and the result is published into its root. */
  readonly registry: ModelRegistry;
  /** The tenant's cap on one job's data (the server's cap applies too). */
  readonly maxDataBytes?: number;
  /** Takes one of the tenant's concurrent-job slots (RESOURCE_EXHAUSTED when none is free); returns its release. */
  readonly enterJob?: () => () => void;
  /** The tenant's limit of jobs queued or running at once, counted across replicas that share a database. */
  readonly maxJobs?: number;
}

/**
 * Whose jobs a caller reaches: its own tenant's, or every tenant's for the platform operator (admin keys, and
 * every caller when authentication is off).
 */
export interface JobViewer {
  readonly tenant: string | undefined;
  readonly allTenants: boolean;
}

const sees = (viewer: JobViewer, job: Pick<JobView, "tenant">): boolean => viewer.allTenants || job.tenant === viewer.tenant;

/** A new job, or the one an idempotency key already named (which may run on another replica). */
export type Submitted = { readonly job: JobRecord; readonly attached: false } | { readonly job: JobView; readonly attached: true };

/** Training jobs: creation from a spec, data intake, a queue with a concurrency cap, lookup and cancel. */
export interface JobManager {
  /** Creates a job (or finds the one an idempotency key already created). Bad specs throw with their status. */
  submit(spec: TrainSpec, owner: JobOwner): Promise<Submitted>;
  /** Checks and stores a chunk (`decode` turns the transport's message into tensors); a bad chunk fails the job and throws its status. */
  addData(job: JobRecord, decode: (label: string) => DecodedChunk): void;
  /** The data is complete (stored, when jobs are durable): the job waits for a training slot. */
  endData(job: JobRecord): Promise<void>;
  /** A job the caller may see; another tenant's job is NOT_FOUND, as a job that does not exist. */
  get(id: string, viewer: JobViewer): Promise<JobView>;
  /** Newest first; `tenant` narrows an all-tenant viewer to one tenant. */
  list(viewer: JobViewer, tenant?: string): Promise<JobView[]>;
  /** Cancels a job wherever it runs (another replica is told through the database). */
  cancel(id: string, viewer: JobViewer): Promise<JobView>;
  /** How to follow a job this replica accepted: itself, or (replicas sharing a database) its stored record, which stays right when another replica takes it over. */
  view(job: JobView): JobView;
  /** Ends a job whose upload was cut off (ABORTED) and frees its idempotency key, so a retry submits it anew. */
  abortUpload(job: JobRecord, reason: string): Promise<void>;
  /** Takes up what an earlier run of the server left: ended jobs as history, open ones to run again. */
  restore(): Promise<RestoreReport>;
  /** Stops taking jobs and ends the runs: durable jobs are suspended (they resume at the next start), others cancelled. */
  close(): Promise<void>;
}

export interface RestoreReport {
  /** Jobs that had not ended and are queued to run again. */
  readonly resumed: number;
  /** Jobs that had not ended but cannot continue (their upload was cut off, their base model is gone). */
  readonly failed: number;
  /** Ended jobs, kept as history for GetJob, ListJobs and WatchJob. */
  readonly ended: number;
}

export function createJobManager(options: JobManagerOptions): JobManager {
  return new Jobs(options);
}

/**
 * The job manager: the queue of jobs with data, the runs, and (when durable) the journal behind them. With a
 * database other replicas share, each job is leased by the replica that runs it, reads go to the database and
 * jobs a dead or departed replica held are taken up here (JobLeases).
 */
class Jobs implements JobManager {
  private readonly jobs: JobStore;
  private readonly waiting: TrainJob[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly checkpoints: CheckpointStore;
  private readonly writers = new Map<TrainJob, DataWriter>();
  /** When each job this replica runs became its own (to tell a lease lost from one taken after a renewal began). */
  private readonly heldSince = new Map<string, number>();
  /** The tenant job slots this replica's jobs hold, freed when a job ends or leaves this replica. */
  private readonly slots = new Map<string, () => void>();
  private readonly leases: JobLeases | undefined;
  private readonly publishLock: RepositoryLock | undefined;
  private closed = false;

  constructor(private readonly options: JobManagerOptions) {
    this.jobs = options.store ?? createMemoryJobStore();
    this.checkpoints = new CheckpointStore(options.checkpointsDir);
    const durable = options.durable;
    if (durable?.db.shared) {
      this.publishLock = (key, work) => durable.db.exclusive(key, work);
      this.leases = new JobLeases(durable.journal, durable.db, {
        freeSlots: () => Math.max(0, options.maxConcurrentJobs - this.running.size - this.waiting.length),
        takeUp: (stored) => this.takeUp(stored),
        cancelRequested: (id) => this.cancelHere(id),
        held: (ids, asOf) => this.keepHeld(ids, asOf),
      }, options.logger);
    }
  }

  async submit(wire: TrainSpec, owner: JobOwner): Promise<Submitted> {
    if (this.closed) throw unavailable("the server is shutting down; submit the job to another replica");
    const spec = parseJobSpec(wire);
    const key = spec.idempotencyKey ? idempotencyScope(owner.tenant, spec.model, spec.idempotencyKey) : undefined;
    const existing = key ? this.jobs.byIdempotencyKey(key) : undefined;
    if (existing) return { job: existing, attached: true };
    // Another replica may have the job: attach before planning (or counting it against the tenant's limit).
    const elsewhere = key && this.leases ? await this.options.durable!.journal.findByKey(owner.tenant, spec.model, spec.idempotencyKey) : undefined;
    if (elsewhere) return { job: this.storedView(elsewhere), attached: true };
    // Resolved in the caller's tenant before any upload: another tenant's checkpoint is as a missing one.
    if (spec.resumeFrom) await this.checkpoints.check(owner.tenant, spec.resumeFrom.jobId, spec.resumeFrom.checkpointId);
    const plan = await planJob(spec, owner.registry);
    const release = owner.enterJob?.() ?? (() => undefined);
    const maxBytes = Math.min(this.options.maxDataBytes, owner.maxDataBytes ?? Infinity);
    const job: TrainJob = new TrainJob(spec, plan.forward, plan.program, new JobData(plan.dataSpec, maxBytes), {
      tenant: owner.tenant,
      registry: owner.registry,
      onEnd: this.onEnd(owner.tenant, release, (): JobRecord => job),
    });
    const durable = this.options.durable;
    if (durable) {
      job.attachJournal(durable.journal.append, (error) => this.lostJournal(job, error));
      let created: boolean;
      try {
        created = await this.record(job, wire, plan.baseVersion, owner);
      } catch (error) {
        release();
        throw error;
      }
      if (!created) {
        release();
        const winner = key ? this.jobs.byIdempotencyKey(key) : undefined;
        if (winner) return { job: winner, attached: true };
        const stored = await durable.journal.findByKey(owner.tenant, spec.model, spec.idempotencyKey);
        if (stored) return { job: this.storedView(stored), attached: true };
        throw new ServerError(Code.ABORTED, `a job with idempotency key "${spec.idempotencyKey}" is being created; retry`);
      }
      this.writers.set(job, durable.data.writer(owner.tenant, job.id));
    }
    this.hold(job, key);
    this.slots.set(job.id, release);
    job.emit({ $case: "prepared", value: preparedEvent(plan.program) });
    job.setState(job.state, `accepted; waiting for data (${plan.program.params.length} parameter tensors to train${plan.program.frozen.length ? `, ${plan.program.frozen.length} frozen` : ""})`);
    await job.flushed();
    if (job.journalError !== undefined) throw unavailable(`job ${job.id} could not be recorded; submit it again`);
    this.options.logger.info({ job: job.id, model: spec.model }, `training job ${job.id} for ${spec.model} accepted`);
    return { job, attached: false };
  }

  /**
   * Stores a new job; false when its idempotency key is taken. With a shared database the tenant's jobs are
   * counted across replicas first, under a lock, so two replicas cannot both take the tenant's last slot.
   */
  private async record(job: TrainJob, wire: TrainSpec, baseVersion: string, owner: JobOwner): Promise<boolean> {
    const durable = this.options.durable!;
    const { tenant, maxJobs } = owner;
    if (!durable.db.shared || tenant === undefined || maxJobs === undefined) return durable.journal.create(job, wire, baseVersion);
    return durable.db.exclusive(`jobs of ${tenant}`, async () => {
      const open = await durable.journal.openCount(tenant);
      if (open >= maxJobs) throw resourceExhausted(`tenant "${tenant}" already has ${open} training jobs queued or running across the replicas (its limit); retry when one ends`, 1000);
      return durable.journal.create(job, wire, baseVersion);
    });
  }

  addData(job: JobRecord, decode: (label: string) => DecodedChunk): void {
    if (job.terminal || !(job instanceof TrainJob)) throw new ServerError(Code.FAILED_PRECONDITION, `job ${job.id} has ended; it takes no more data`);
    if (job.dataComplete) throw invalidArgument(`job ${job.id}: data arrived after the end marker`);
    let accepted: DecodedChunk | undefined;
    try {
      job.data.add((label) => (accepted = decode(label)));
    } catch (error) {
      const e = ServerError.from(error);
      job.fail(e.code, e.message);
      throw e;
    }
    this.writers.get(job)?.append(accepted!);
  }

  async endData(job: JobRecord): Promise<void> {
    if (job.terminal || job.dataComplete || !(job instanceof TrainJob)) return;
    job.dataComplete = true;
    // The data is on disk before the job says it has it: after a crash from here on, the job goes on without the client.
    await this.writers.get(job)?.finish();
    this.writers.delete(job);
    crashPoint("data-synced");
    if (job.terminal) return;
    job.emit({
      $case: "data",
      value: { trainRows: BigInt(job.data.trainRows), validationRows: BigInt(job.data.validationRows), bytes: BigInt(job.data.bytes) },
    });
    this.enqueue(job, true);
  }

  async get(id: string, viewer: JobViewer): Promise<JobView> {
    const local = this.leases ? undefined : this.jobs.get(id);
    const job = local ?? (await this.find(id));
    if (!job || !sees(viewer, job)) throw notFound(`job "${id.slice(0, 80)}" not found`);
    return job;
  }

  async list(viewer: JobViewer, tenant?: string): Promise<JobView[]> {
    const durable = this.options.durable;
    if (durable?.db.shared) {
      const scope = viewer.allTenants ? (tenant === undefined ? null : tenant || undefined) : viewer.tenant;
      if (!viewer.allTenants && tenant !== undefined && tenant !== (viewer.tenant ?? "")) return [];
      return (await durable.journal.list(scope)).map((s) => this.storedView(s));
    }
    return [...this.jobs.all()]
      .filter((j) => sees(viewer, j) && (!tenant || (j.owner.tenant ?? "") === tenant))
      .sort((a, b) => b.created.getTime() - a.created.getTime());
  }

  async cancel(id: string, viewer: JobViewer): Promise<JobView> {
    const job = await this.get(id, viewer);
    if (job.terminal) return job;
    if (!this.leases) {
      this.cancelHere(id);
      return job;
    }
    // Wherever it runs: the replica that holds it hears of it; a job nobody holds is taken here and ended.
    await this.options.durable!.journal.requestCancel(id);
    if (!this.cancelHere(id)) await this.leases.claim(id);
    return (await this.find(id)) ?? job;
  }

  view(job: JobView): JobView {
    return this.leases ? this.storedView({ id: job.id, tenant: job.tenant, state: job.state, summary: job.toWire() }) : job;
  }

  async abortUpload(job: JobRecord, reason: string): Promise<void> {
    if (job.terminal || job.dataComplete) return;
    job.fail(Code.ABORTED, reason);
    this.jobs.forgetKey(job);
    await this.options.durable?.journal.releaseKey(job.id).catch((error: unknown) => this.options.logger.error({ err: error, job: job.id }, "could not free a job's idempotency key"));
  }

  async restore(): Promise<RestoreReport> {
    const durable = this.options.durable;
    if (!durable) return { resumed: 0, failed: 0, ended: 0 };
    const swept = await durable.data.sweep(await durable.journal.openIds());
    if (swept) this.options.logger.info({ files: swept }, `removed the uploaded data of ${swept} jobs that had ended`);
    if (this.leases) {
      // The first claim takes what replicas that died left; the report counts it.
      const before = this.tookUp;
      await this.leases.start();
      return { resumed: this.tookUp.resumed - before.resumed, failed: this.tookUp.failed - before.failed, ended: 0 };
    }
    // Alone on the state folder (its lock says so): every open job is this server's to take up, lease or not.
    await durable.journal.claimAll();
    const restored = await this.restoreStored(await durable.journal.load());
    return { resumed: restored.resume.length, failed: restored.failed, ended: restored.ended };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.leases?.stop();
    const durable = this.options.durable;
    const suspended: string[] = [];
    for (const job of this.jobs.all()) {
      if (job.terminal) continue;
      if (!durable) job.cancel("the server shut down");
      else if (job instanceof TrainJob && job.dataComplete) {
        job.suspend();
        suspended.push(job.id);
      } else await this.abortUpload(job, "the server shut down before the job's data was complete: send the job again (its idempotency key is free)");
    }
    await Promise.allSettled([...this.running]);
    await Promise.allSettled([...this.jobs.all()].map((job) => job.flushed()));
    // Another replica takes these up at once rather than when the leases run out.
    if (this.leases) await durable!.journal.release(suspended).catch((error: unknown) => this.options.logger.warn({ err: error }, "could not release the leases of suspended jobs"));
  }

  /** Jobs taken up from the database so far (resumed, or ended because they could not go on). */
  private tookUp = { resumed: 0, failed: 0 };

  /** Jobs whose leases this replica took: ended ones as history, open ones live again (run, or cancelled if asked). */
  private async takeUp(stored: readonly StoredJob[]): Promise<void> {
    const restored = await this.restoreStored(stored);
    for (const s of stored) if (s.cancelRequested) this.cancelHere(s.id);
    this.tookUp = { resumed: this.tookUp.resumed + restored.resume.length, failed: this.tookUp.failed + restored.failed };
  }

  private async restoreStored(stored: readonly StoredJob[]): Promise<Awaited<ReturnType<typeof restoreJobs>>> {
    const durable = this.options.durable!;
    const restored = await restoreJobs(stored, {
      durable,
      logger: this.options.logger,
      maxDataBytes: this.options.maxDataBytes,
      onEnd: (tenant, job) => this.onEnd(tenant, () => undefined, job),
      onJournalLost: (job) => (error) => this.lostJournal(job, error),
    });
    for (const { job, key } of restored.jobs) this.hold(job, key);
    for (const job of restored.resume) this.enqueue(job);
    return restored;
  }

  /** Cancels a job if it is live here; false when it is not. */
  private cancelHere(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job || job.terminal) return false;
    job.cancel("cancelled by request");
    const i = job instanceof TrainJob ? this.waiting.indexOf(job) : -1;
    if (i >= 0) this.waiting.splice(i, 1);
    return true;
  }

  private hold(job: JobRecord, key: string | undefined): void {
    this.jobs.add(job, key);
    if (!job.terminal) this.heldSince.set(job.id, Date.now());
  }

  /** Jobs this replica ran whose leases another replica took (it thought this one dead): stop them here. */
  private keepHeld(ids: ReadonlySet<string>, asOf: number): void {
    for (const job of [...this.jobs.all()]) {
      const since = this.heldSince.get(job.id);
      if (job.terminal || ids.has(job.id) || since === undefined || since >= asOf) continue;
      this.drop(job, "its lease was taken over by another replica");
    }
  }

  private lostJournal(job: JobRecord, error: unknown): void {
    if (error instanceof LeaseLostError) this.drop(job, "another replica took it over");
    else {
      this.options.logger.error({ err: error, job: job.id }, `training job ${job.id}: its progress could not be stored; it stops here and is taken up again from its newest checkpoint`);
      this.drop(job, "its progress could not be stored");
    }
  }

  /** Stops a job here without ending it: it lives on where its lease is (or is taken up again once the lease runs out). */
  private drop(job: JobRecord, why: string): void {
    this.forget(job);
    if (job instanceof TrainJob) {
      job.suspend();
      const i = this.waiting.indexOf(job);
      if (i >= 0) this.waiting.splice(i, 1);
      void this.writers.get(job)?.abandon();
      this.writers.delete(job);
    }
    this.options.logger.warn({ job: job.id }, `training job ${job.id} stops on this replica: ${why}`);
  }

  /** This replica no longer has the job: out of its store, its tenant slot here freed. */
  private forget(job: JobRecord): void {
    this.heldSince.delete(job.id);
    this.jobs.remove(job);
    this.freeSlot(job.id);
  }

  /** Frees the tenant job slot a job holds here, once. */
  private freeSlot(id: string): void {
    this.slots.get(id)?.();
    this.slots.delete(id);
  }

  /**
   * A job with its data and no free slot here goes to the shared queue (its lease released): the first replica
   * with a free slot takes it (this one too, when a run here ends). Its uploaded data is on the shared volume.
   */
  private async handOver(job: TrainJob): Promise<void> {
    job.setState(job.state, `data complete; waiting for a training slot on any replica (${this.running.size} running here)`);
    await job.flushed();
    if (job.terminal || job.journalError !== undefined) return;
    this.forget(job);
    job.suspend();
    await this.options.durable!.journal.release([job.id]).catch((error: unknown) => this.options.logger.error({ err: error, job: job.id }, "could not hand a job to the shared queue; it moves when its lease runs out"));
  }

  private async find(id: string): Promise<JobView | undefined> {
    const stored = await this.options.durable?.journal.find(id);
    return stored && this.storedView(stored);
  }

  private storedView(stored: Pick<StoredJob, "id" | "tenant" | "state" | "summary">): JobView {
    const durable = this.options.durable!;
    return new StoredJobView(stored, durable.journal, durable.feed);
  }

  /** What runs when a job ends: its tenant's slot is freed and its uploaded data deleted. */
  private onEnd(tenant: string | undefined, release: () => void, job: () => JobRecord): () => void {
    return () => {
      release();
      this.freeSlot(job().id);
      this.heldSince.delete(job().id);
      if (job().state === JobState.JOB_STATE_SUCCEEDED) this.options.onPublished?.(tenant, job().identity.model);
      const writer = this.writers.get(job() as TrainJob);
      this.writers.delete(job() as TrainJob);
      const durable = this.options.durable;
      if (!durable) return;
      // After the writes under way, so no late write re-creates the file.
      void (writer?.abandon() ?? Promise.resolve())
        .then(() => durable.data.remove(tenant, job().id))
        .catch((error: unknown) => this.options.logger.error({ err: error }, "could not delete a job's data"));
    };
  }

  /** Queues a job here; a `fresh` one (its data just completed) that cannot start now goes to the shared queue instead. */
  private enqueue(job: TrainJob, fresh = false): void {
    if (fresh && this.leases && this.running.size + this.waiting.length >= this.options.maxConcurrentJobs) {
      void this.handOver(job);
      return;
    }
    this.waiting.push(job);
    if (this.running.size >= this.options.maxConcurrentJobs) job.setState(job.state, `data complete; waiting for a training slot (${this.running.size} running)`);
    this.pump();
  }

  private pump(): void {
    const { options } = this;
    while (!this.closed && this.running.size < options.maxConcurrentJobs && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      if (job.terminal || job.suspended) continue;
      const run = runJob(job, { checkpoints: this.checkpoints, threads: options.threads, providers: options.providers, logger: options.logger, publishLock: this.publishLock }).finally(() => {
        this.running.delete(run);
        this.pump();
        // A slot is free: a job nobody holds may be waiting for one.
        if (!this.closed && this.waiting.length === 0) void this.leases?.claim();
      });
      this.running.add(run);
    }
  }
}
