import { JobState, type Job } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import { Code, ServerError } from "../../common/errors.js";
import { planJob } from "./job-builder.js";
import { JobData } from "./job-data.js";
import type { DurableJobs } from "./durable-jobs.js";
import { parseJobSpec } from "./job-spec.js";
import { idempotencyScope } from "./job-store.js";
import { SqlJobJournal, type StoredJob } from "./sql-job-journal.js";
import { JobRecord, TrainJob } from "./train-job.js";

export interface RestoreDeps {
  readonly durable: DurableJobs;
  readonly logger: Logger;
  readonly maxDataBytes: number;
  /** What runs when a restored job ends (its data deleted). */
  readonly onEnd: (tenant: string | undefined, job: () => JobRecord) => () => void;
  /** What happens to a restored job whose journal refuses a write (its lease went to another replica). */
  readonly onJournalLost?: (job: JobRecord) => (error: unknown) => void;
}

export interface Restored {
  readonly jobs: { readonly job: JobRecord; readonly key: string | undefined }[];
  /** Jobs to run again, in the order they were submitted. */
  readonly resume: TrainJob[];
  readonly failed: number;
  readonly ended: number;
}

/** The fields GetJob shows, as they were stored; the events too, read now or when watched (`lazy`). */
function applySummary(job: JobRecord, stored: StoredJob, lazy?: SqlJobJournal): void {
  const s: Job = stored.summary;
  job.state = stored.state;
  job.step = Number(s.step);
  job.epoch = s.epoch;
  job.totalSteps = Number(s.totalSteps);
  job.publishedVersion = s.publishedVersion;
  job.metrics = s.metrics;
  job.error = s.error;
  job.dataComplete = stored.dataComplete;
  job.updated = new Date(Number(s.updatedUnixMs) || stored.created.getTime());
  if (lazy) job.restoreEventsLazily(Number(s.lastEventId), () => lazy.events(stored.id));
  else job.restoreEvents(stored.events);
}

/**
 * Rebuilds the jobs an earlier run of the server stored: ended ones as history, and each one that had not
 * ended as a live job with its data read back from disk, to run again from its newest checkpoint. A job
 * whose upload was cut off by the restart, or whose base model is gone, is failed with the reason (and its
 * idempotency key freed, so the client's retry submits it anew).
 */
export async function restoreJobs(stored: readonly StoredJob[], deps: RestoreDeps): Promise<Restored> {
  const out: { jobs: Restored["jobs"][number][]; resume: TrainJob[]; failed: number; ended: number } = { jobs: [], resume: [], failed: 0, ended: 0 };
  for (const s of stored) {
    const key = s.idempotencyKey ? idempotencyScope(s.tenant, s.model, s.idempotencyKey) : undefined;
    if (SqlJobJournal.ended(s.state)) {
      const record = new JobRecord({ id: s.id, created: s.created, tenant: s.tenant, model: s.model, idempotencyKey: s.idempotencyKey }, { tenant: s.tenant, onEnd: () => undefined });
      applySummary(record, s, deps.durable.journal);
      out.jobs.push({ job: record, key });
      out.ended++;
      continue;
    }
    const job = await reopen(s, deps).catch((error: unknown) => failedRecord(s, deps, error));
    if (job instanceof TrainJob && !job.terminal) {
      out.resume.push(job);
      out.jobs.push({ job, key });
    } else {
      await deps.durable.journal.releaseKey(s.id);
      out.jobs.push({ job, key: undefined });
      out.failed++;
    }
  }
  return out;
}

/** A job that had not ended, live again with its data; failed (not thrown) when its upload never completed. */
async function reopen(s: StoredJob, deps: RestoreDeps): Promise<TrainJob> {
  const { durable } = deps;
  const spec = parseJobSpec(s.spec);
  const registry = durable.registryFor(s.tenant);
  const plan = await planJob(spec, registry, s.baseVersion || undefined);
  const job: TrainJob = new TrainJob(spec, plan.forward, plan.program, new JobData(plan.dataSpec, deps.maxDataBytes), {
    tenant: s.tenant,
    registry,
    onEnd: deps.onEnd(s.tenant, () => job),
  }, { id: s.id, created: s.created });
  applySummary(job, s);
  job.attachJournal(durable.journal.append, deps.onJournalLost?.(job));
  if (!s.dataComplete) {
    job.fail(Code.ABORTED, "the server restarted before the job's data was complete: send the job again (its idempotency key is free)");
    return job;
  }
  for (const chunk of await durable.data.read(s.tenant, s.id)) job.data.add(() => chunk);
  // A job its replica handed to the shared queue before it ever ran simply starts; any other goes on from where it was.
  job.restarted = !(s.released && !hasRun(s));
  deps.logger.info({ job: s.id, model: s.model }, job.restarted ? `training job ${s.id} for ${s.model} will resume after the restart` : `training job ${s.id} for ${s.model} taken from the shared queue`);
  return job;
}

/** Whether a job's stored history shows it training (or validating) at some point. */
const hasRun = (s: StoredJob): boolean =>
  s.events.some((e) => e.event?.$case === "state" && (e.event.value.state === JobState.JOB_STATE_RUNNING || e.event.value.state === JobState.JOB_STATE_VALIDATING));

/** A job that cannot be taken up again, as a record that failed with the reason. */
function failedRecord(s: StoredJob, deps: RestoreDeps, error: unknown): JobRecord {
  const record: JobRecord = new JobRecord({ id: s.id, created: s.created, tenant: s.tenant, model: s.model, idempotencyKey: s.idempotencyKey }, { tenant: s.tenant, onEnd: deps.onEnd(s.tenant, (): JobRecord => record) });
  applySummary(record, s);
  record.attachJournal(deps.durable.journal.append, deps.onJournalLost?.(record));
  const why = error instanceof ServerError ? error.message : "its data or model could not be read back";
  if (!(error instanceof ServerError)) deps.logger.error({ err: error, job: s.id }, `training job ${s.id} could not be taken up again`);
  record.fail(Code.FAILED_PRECONDITION, `the server restarted and could not take the job up again: ${why}`);
  return record;
}
