import type { TrainSpec } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import { crashPoint } from "../../common/crash-points.js";
import { Code, ServerError, invalidArgument, notFound, unavailable } from "../../common/errors.js";
import type { ProviderName } from "../../runtime/index.js";
import type { ModelRegistry } from "../../serving/index.js";
import { CheckpointStore } from "./checkpoint-store.js";
import type { DataWriter } from "./data-journal.js";
import type { DurableJobs } from "./durable-jobs.js";
import { planJob } from "./job-builder.js";
import { JobData, type DecodedChunk } from "./job-data.js";
import { parseJobSpec } from "./job-spec.js";
import { restoreJobs } from "./job-restore.js";
import { runJob } from "./run-job.js";
import { createMemoryJobStore, idempotencyScope, type JobStore } from "./job-store.js";
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
}

/**
 * Whose jobs a caller reaches: its own tenant's, or every tenant's for the platform operator (admin keys, and
 * every caller when authentication is off).
 */
export interface JobViewer {
  readonly tenant: string | undefined;
  readonly allTenants: boolean;
}

const sees = (viewer: JobViewer, job: JobRecord): boolean => viewer.allTenants || job.owner.tenant === viewer.tenant;

/** Training jobs: creation from a spec, data intake, a queue with a concurrency cap, lookup and cancel. */
export interface JobManager {
  /** Creates a job (or finds the one an idempotency key already created). Bad specs throw with their status. */
  submit(spec: TrainSpec, owner: JobOwner): Promise<{ job: JobRecord; attached: boolean }>;
  /** Checks and stores a chunk (`decode` turns the transport's message into tensors); a bad chunk fails the job and throws its status. */
  addData(job: JobRecord, decode: (label: string) => DecodedChunk): void;
  /** The data is complete (stored, when jobs are durable): the job waits for a training slot. */
  endData(job: JobRecord): Promise<void>;
  /** A job the caller may see; another tenant's job is NOT_FOUND, as a job that does not exist. */
  get(id: string, viewer: JobViewer): JobRecord;
  /** Newest first; `tenant` narrows an all-tenant viewer to one tenant. */
  list(viewer: JobViewer, tenant?: string): JobRecord[];
  cancel(id: string, viewer: JobViewer): JobRecord;
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

/** The job manager: the queue of jobs with data, the runs, and (when durable) the journal behind them. */
class Jobs implements JobManager {
  private readonly jobs: JobStore;
  private readonly waiting: TrainJob[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly checkpoints: CheckpointStore;
  private readonly writers = new Map<TrainJob, DataWriter>();
  private closed = false;

  constructor(private readonly options: JobManagerOptions) {
    this.jobs = options.store ?? createMemoryJobStore();
    this.checkpoints = new CheckpointStore(options.checkpointsDir);
  }

  async submit(wire: TrainSpec, owner: JobOwner): Promise<{ job: JobRecord; attached: boolean }> {
    if (this.closed) throw unavailable("the server is shutting down; submit the job to another replica");
    const spec = parseJobSpec(wire);
    const key = spec.idempotencyKey ? idempotencyScope(owner.tenant, spec.model, spec.idempotencyKey) : undefined;
    const existing = key ? this.jobs.byIdempotencyKey(key) : undefined;
    if (existing) return { job: existing, attached: true };
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
      job.attachJournal(durable.journal.append);
      if (!(await durable.journal.create(job, wire, plan.baseVersion))) {
        release();
        const winner = key ? this.jobs.byIdempotencyKey(key) : undefined;
        if (winner) return { job: winner, attached: true };
        throw new ServerError(Code.ABORTED, `a job with idempotency key "${spec.idempotencyKey}" is being created; retry`);
      }
      this.writers.set(job, durable.data.writer(owner.tenant, job.id));
    }
    this.jobs.add(job, key);
    job.setState(job.state, `accepted; waiting for data (${plan.program.params.length} parameter tensors to train${plan.program.frozen.length ? `, ${plan.program.frozen.length} frozen` : ""})`);
    await job.flushed();
    this.options.logger.info({ job: job.id, model: spec.model }, `training job ${job.id} for ${spec.model} accepted`);
    return { job, attached: false };
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
    this.enqueue(job);
  }

  get(id: string, viewer: JobViewer): JobRecord {
    const job = this.jobs.get(id);
    if (!job || !sees(viewer, job)) throw notFound(`job "${id.slice(0, 80)}" not found`);
    return job;
  }

  list(viewer: JobViewer, tenant?: string): JobRecord[] {
    return [...this.jobs.all()]
      .filter((j) => sees(viewer, j) && (!tenant || (j.owner.tenant ?? "") === tenant))
      .sort((a, b) => b.created.getTime() - a.created.getTime());
  }

  cancel(id: string, viewer: JobViewer): JobRecord {
    const job = this.get(id, viewer);
    job.cancel("cancelled by request");
    const i = job instanceof TrainJob ? this.waiting.indexOf(job) : -1;
    if (i >= 0) this.waiting.splice(i, 1);
    return job;
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
    const restored = await restoreJobs(await durable.journal.load(), {
      durable,
      logger: this.options.logger,
      maxDataBytes: this.options.maxDataBytes,
      onEnd: (tenant, job) => this.onEnd(tenant, () => undefined, job),
    });
    for (const { job, key } of restored.jobs) this.jobs.add(job, key);
    const swept = await durable.data.sweep(new Set(restored.resume.map((job) => job.id)));
    if (swept) this.options.logger.info({ files: swept }, `removed the uploaded data of ${swept} jobs that had ended`);
    for (const job of restored.resume) this.enqueue(job);
    return { resumed: restored.resume.length, failed: restored.failed, ended: restored.ended };
  }

  async close(): Promise<void> {
    this.closed = true;
    const durable = this.options.durable;
    for (const job of this.jobs.all()) {
      if (job.terminal) continue;
      if (!durable) job.cancel("the server shut down");
      else if (job instanceof TrainJob && job.dataComplete) job.suspend();
      else await this.abortUpload(job, "the server shut down before the job's data was complete: send the job again (its idempotency key is free)");
    }
    await Promise.allSettled([...this.running]);
    await Promise.allSettled([...this.jobs.all()].map((job) => job.flushed()));
  }

  /** What runs when a job ends: its tenant's slot is freed and its uploaded data deleted. */
  private onEnd(tenant: string | undefined, release: () => void, job: () => JobRecord): () => void {
    return () => {
      release();
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

  private enqueue(job: TrainJob): void {
    this.waiting.push(job);
    if (this.running.size >= this.options.maxConcurrentJobs) job.setState(job.state, `data complete; waiting for a training slot (${this.running.size} running)`);
    this.pump();
  }

  private pump(): void {
    const { options } = this;
    while (!this.closed && this.running.size < options.maxConcurrentJobs && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      if (job.terminal) continue;
      const run = runJob(job, { checkpoints: this.checkpoints, threads: options.threads, providers: options.providers, logger: options.logger }).finally(() => {
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
  }
}
