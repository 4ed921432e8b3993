import { randomUUID } from "node:crypto";
import { JobState, type FinalMetrics } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import { crashPoint } from "../../common/crash-points.js";
import { Code, ServerError } from "../../common/errors.js";
import type { ProviderName } from "../../runtime/index.js";
import { findPublishedVersion, publishVersion, withdrawVersion, type RepositoryLock } from "../../repository/index.js";
import { encodeModel } from "../onnx/model-file.js";
import { createTrainRunner, type TrainRunner } from "../engine/train-runner.js";
import { bakeWeights } from "../engine/train-program.js";
import type { ConstTensor } from "../onnx/graph-builder.js";
import type { CheckpointStore, CheckpointMeta } from "./checkpoint-store.js";
import { batchFeeds, evaluateHeldOut, permutation, type Evaluation } from "./job-batches.js";
import { MetricsWindow } from "./metrics-window.js";
import type { TrainJob } from "./train-job.js";

export { permutation } from "./job-batches.js";

export interface RunJobDeps {
  readonly checkpoints: CheckpointStore;
  readonly threads: number;
  readonly providers: readonly ProviderName[];
  readonly logger: Logger;
  /** Held while publishing, across replicas that share the repository (each publish then gets its own version number). */
  readonly publishLock?: RepositoryLock;
}

/** What a published version's metrics.json says of the job that trained it. */
type PublishedSummary = Omit<FinalMetrics, "steps" | "validationRows"> & { job: string; stopReason: string; steps: number; validationRows: number };

/** The job states a run moves through; each names the step that runs in it and returns the next. */
type Phase = JobState.JOB_STATE_VALIDATING | JobState.JOB_STATE_RUNNING | "publishing" | "done";

type StopReason = "epochs" | "max_steps" | "max_seconds" | "early_stopping";

/** Where the run is: what a checkpoint records and a resume restores. */
interface Position {
  epoch: number;
  batchInEpoch: number;
  /** Early stopping: the best validation value so far (higher is better), and epochs since it. */
  best: number | null;
  sinceBest: number;
}

/**
 * Trains a job whose data is complete, then publishes the result: VALIDATING → RUNNING → SUCCEEDED, or FAILED /
 * CANCELLED. Epochs visit the rows in a seeded order, metrics go out every few steps, validation after every
 * epoch, checkpoints at the configured interval, and a NaN or infinite loss stops the job.
 */
export async function runJob(job: TrainJob, deps: RunJobDeps): Promise<void> {
  const run = new JobRun(job, deps);
  try {
    let phase: Phase = JobState.JOB_STATE_VALIDATING;
    while (phase !== "done") phase = await run.step(phase);
  } catch (error) {
    run.fail(error);
  } finally {
    await run.close();
  }
}

class JobRun {
  private runner: TrainRunner | undefined;
  private readonly position: Position = { epoch: 0, batchInEpoch: 0, best: null, sinceBest: 0 };
  private stepsPerEpoch = 0;
  private secondsBefore = 0;
  private started = 0;
  private stopReason: StopReason = "epochs";
  private lastTrain = { loss: NaN, accuracy: NaN };
  private lastValidation: Evaluation | undefined;
  /**
   * With early stopping, the weights of the best validation epoch are what gets published (as Keras'
   * restore_best_weights): a copy is kept each time validation improves.
   */
  private bestWeights: { params: Map<string, ConstTensor>; validation: Evaluation; epoch: number } | undefined;

  constructor(
    private readonly job: TrainJob,
    private readonly deps: RunJobDeps,
  ) {}

  step(phase: Exclude<Phase, "done">): Promise<Phase> {
    if (phase === JobState.JOB_STATE_VALIDATING) return this.validate();
    if (phase === JobState.JOB_STATE_RUNNING) return this.train();
    return this.publish();
  }

  async close(): Promise<void> {
    await this.runner?.close();
    this.runner = undefined;
  }

  /** Internal error text stays in the log; the client gets an incident id that finds it there. */
  fail(error: unknown): void {
    const { job, deps } = this;
    if (job.suspended) return; // a shutdown stopped it; the next start takes it up again
    const e = ServerError.from(error);
    if (job.cancelSignal.aborted && !job.error) return job.finishCancelled("cancelled; nothing was published");
    if (e.code !== Code.INTERNAL) return job.fail(e.code, e.message);
    const incident = randomUUID().slice(0, 8);
    deps.logger.error({ err: error, job: job.id, incident }, `job ${job.id} failed (incident ${incident})`);
    job.fail(e.code, `internal error (incident ${incident}; the server's log has the details)`);
  }

  private get seconds(): number {
    return this.secondsBefore + (performance.now() - this.started) / 1000;
  }

  /** Checks the data, holds out validation rows, builds the runner and restores a checkpoint. */
  private async validate(): Promise<Phase> {
    const { job, deps } = this;
    const spec = job.spec;
    job.setState(JobState.JOB_STATE_VALIDATING, "checking the data and building the train step");
    if (job.data.trainRows === 0) throw new ServerError(Code.INVALID_ARGUMENT, "no training rows arrived: send TrainData chunks before ending the stream");
    if (job.data.validationRows === 0 && spec.validationFraction > 0) {
      const count = Math.floor(job.data.trainRows * spec.validationFraction);
      if (count > 0 && count < job.data.trainRows) job.data.holdOut(permutation(job.data.trainRows, spec.seed, 1).subarray(0, count));
    }
    this.stepsPerEpoch = Math.ceil(job.data.trainRows / spec.batchSize);
    const planned = this.stepsPerEpoch * spec.epochs;
    job.totalSteps = spec.maxSteps > 0 ? Math.min(spec.maxSteps, planned) : planned;
    if (job.restarted && (await this.adoptPublished())) return "done";
    this.runner = await createTrainRunner(job.program, { threads: deps.threads, providers: deps.providers });
    if (this.runner.fallbackReason) deps.logger.warn({ job: job.id }, `training on CPU: ${this.runner.fallbackReason}`);
    if (job.restarted) await this.continueAfterRestart();
    else if (spec.resumeFrom) await this.resume(spec.resumeFrom);
    return JobState.JOB_STATE_RUNNING;
  }

  /**
   * A restart found the job mid-publish: if its version was written (metrics.json names the job), the job
   * succeeds with that version instead of publishing a second one.
   */
  private async adoptPublished(): Promise<boolean> {
    const { job } = this;
    const registry = job.owner.registry;
    let summary: PublishedSummary | undefined;
    const version = await findPublishedVersion(registry.root, job.spec.model, "metrics.json", (text) => {
      try {
        const parsed = JSON.parse(text) as PublishedSummary;
        if (parsed.job !== job.id) return false;
        summary = parsed;
        return true;
      } catch {
        return false;
      }
    });
    if (version === undefined || !summary) return false;
    await registry.load(job.spec.model);
    const metrics: FinalMetrics = { ...summary, steps: BigInt(summary.steps), validationRows: BigInt(summary.validationRows) };
    job.metrics = metrics;
    job.publishedVersion = String(version);
    job.emit({ $case: "resumed", value: { fromStep: BigInt(summary.steps), checkpoint: "", reason: `the server restarted after version ${version} was written; it is the job's result` } });
    job.emit({ $case: "completed", value: { model: job.spec.model, version: String(version), metrics, stopReason: summary.stopReason } });
    job.succeed();
    return true;
  }

  /**
   * Continues a job a restart interrupted: from its newest checkpoint, else from the checkpoint its spec
   * resumed from, else from the start.
   */
  private async continueAfterRestart(): Promise<void> {
    const { job, deps } = this;
    const newest = await deps.checkpoints.newest(job.owner.tenant, job.id);
    if (newest) {
      const [, checkpointId] = newest.split("/");
      await this.resume({ jobId: job.id, checkpointId: checkpointId! });
    } else if (job.spec.resumeFrom) {
      await this.resume(job.spec.resumeFrom);
    }
    job.emit({
      $case: "resumed",
      value: {
        fromStep: BigInt(this.runner!.steps),
        checkpoint: newest ?? (job.spec.resumeFrom ? `${job.spec.resumeFrom.jobId}/${job.spec.resumeFrom.checkpointId}` : ""),
        reason: "the server restarted while the job was queued or training",
      },
    });
  }

  private async resume(from: { jobId: string; checkpointId: string }): Promise<void> {
    const { job, deps } = this;
    const spec = job.spec;
    const ckpt = await deps.checkpoints.read(job.owner.tenant, from.jobId, from.checkpointId);
    const m = ckpt.meta;
    if (m.trainRows !== job.data.trainRows || m.batchSize !== spec.batchSize || m.seed !== spec.seed) {
      throw new ServerError(
        Code.FAILED_PRECONDITION,
        `checkpoint ${from.jobId}/${from.checkpointId} was made with ${m.trainRows} training rows, batch size ${m.batchSize} and seed ${m.seed}; this job has ${job.data.trainRows}, ${spec.batchSize} and ${spec.seed}: resume with the same spec and data`,
      );
    }
    await this.runner!.restore(ckpt.state, m.step).catch((error: Error) => {
      throw new ServerError(Code.FAILED_PRECONDITION, `checkpoint does not fit this model: ${error.message}`);
    });
    Object.assign(this.position, { epoch: m.epoch, batchInEpoch: m.batchInEpoch, best: m.bestMetric, sinceBest: m.epochsSinceBest });
    this.secondsBefore = m.seconds;
  }

  /** Epochs until the last, a limit, early stopping or cancellation. */
  private async train(): Promise<Phase> {
    const { job } = this;
    const spec = job.spec;
    job.step = this.runner!.steps;
    job.setState(JobState.JOB_STATE_RUNNING, `training on ${job.data.trainRows} rows, ${job.data.validationRows} held out, ${job.totalSteps} steps`);
    this.started = performance.now();
    const window = new MetricsWindow();
    const at = this.position;
    for (; at.epoch < spec.epochs; at.epoch++, at.batchInEpoch = 0) {
      job.epoch = at.epoch + 1;
      if (!(await this.runEpoch(window))) break;
      if (job.cancelSignal.aborted) break;
      if (job.data.validationRows > 0 && (await this.validateEpoch())) {
        this.stopReason = "early_stopping";
        at.epoch++;
        at.batchInEpoch = 0;
        break;
      }
      // Without a step interval, a checkpoint at each epoch's end: it resumes at the next epoch's start.
      if (spec.checkpointIntervalSteps === 0 && at.epoch < spec.epochs - 1) await this.checkpoint(at.epoch + 1, 0);
    }
    if (job.cancelSignal.aborted) {
      if (!job.suspended) job.finishCancelled("cancelled; nothing was published");
      return "done";
    }
    return "publishing";
  }

  /** The epoch's remaining steps; false when a limit or cancellation stopped it. */
  private async runEpoch(window: MetricsWindow): Promise<boolean> {
    const { job, position: at } = this;
    const spec = job.spec;
    const runner = this.runner!;
    const order = permutation(job.data.trainRows, spec.seed, 1000 + at.epoch);
    const feedsAt = (batch: number): ReturnType<typeof batchFeeds> | undefined =>
      batch < this.stepsPerEpoch ? batchFeeds(job, "train", order.subarray(batch * spec.batchSize, (batch + 1) * spec.batchSize)) : undefined;
    // The next batch is gathered while the worker runs the current step.
    let next = feedsAt(at.batchInEpoch);
    while (next) {
      const limit = this.limitReached();
      if (limit !== undefined) {
        if (limit !== "cancelled") this.stopReason = limit;
        return false;
      }
      const rows = next[job.program.labels.name]!.dims[0]!;
      const pending = runner.step(next, spec.learningRate);
      at.batchInEpoch++;
      next = feedsAt(at.batchInEpoch);
      const result = await pending;
      job.step = runner.steps;
      if (!Number.isFinite(result.loss)) {
        throw new ServerError(
          Code.FAILED_PRECONDITION,
          `the loss became ${result.loss} at step ${runner.steps} (epoch ${at.epoch + 1}): training diverged; lower the learning rate (${spec.learningRate}) or check the data's scale`,
        );
      }
      window.add(result.loss, result.correct ?? 0, rows);
      if (window.stepCount >= spec.metricsIntervalSteps || (!next && at.epoch === spec.epochs - 1)) this.emitMetrics(window);
      if (spec.checkpointIntervalSteps > 0 && runner.steps % spec.checkpointIntervalSteps === 0) await this.checkpoint(at.epoch, at.batchInEpoch);
    }
    return true;
  }

  private limitReached(): "cancelled" | "max_steps" | "max_seconds" | undefined {
    const spec = this.job.spec;
    if (this.job.cancelSignal.aborted) return "cancelled";
    if (spec.maxSteps > 0 && this.runner!.steps >= spec.maxSteps) return "max_steps";
    if (spec.maxSeconds > 0 && this.seconds >= spec.maxSeconds) return "max_seconds";
    return undefined;
  }

  private emitMetrics(window: MetricsWindow): void {
    const { job } = this;
    const spec = job.spec;
    const steps = this.runner!.steps;
    const { loss, accuracy, examplesPerSecond } = window.close();
    this.lastTrain = { loss, accuracy };
    job.emit({
      $case: "metrics",
      value: {
        step: BigInt(steps),
        epoch: this.position.epoch + 1,
        trainLoss: loss,
        trainAccuracy: job.program.classification ? accuracy : 0,
        learningRate: spec.learningRate,
        examplesPerSecond,
        etaSeconds: ((job.totalSteps - steps) * spec.batchSize) / Math.max(examplesPerSecond, 1e-9),
        totalSteps: BigInt(job.totalSteps),
      },
    });
  }

  /** Evaluates the held-out rows after an epoch; true when early stopping ends the run here. */
  private async validateEpoch(): Promise<boolean> {
    const { job, position: at } = this;
    const spec = job.spec;
    const runner = this.runner!;
    const validation = await evaluateHeldOut(job, runner, Math.max(spec.batchSize, 256));
    this.lastValidation = validation;
    job.emit({
      $case: "validation",
      value: {
        epoch: at.epoch + 1,
        step: BigInt(runner.steps),
        loss: validation.loss,
        accuracy: job.program.classification ? validation.accuracy : 0,
        rows: BigInt(validation.rows),
      },
    });
    const stopping = spec.earlyStopping;
    if (!stopping) return false;
    const value = stopping.metric === "accuracy" ? validation.accuracy : -validation.loss;
    if (at.best === null || value > at.best + stopping.minDelta) {
      at.best = value;
      at.sinceBest = 0;
      this.bestWeights = { params: await runner.parameters(), validation, epoch: at.epoch + 1 };
      return false;
    }
    return ++at.sinceBest >= stopping.patience;
  }

  /** Writes a checkpoint that resumes at (epoch, batchInEpoch). */
  private async checkpoint(epoch: number, batchInEpoch: number): Promise<void> {
    const { job, position: at } = this;
    const runner = this.runner!;
    const meta: CheckpointMeta = {
      jobId: job.id,
      ...(job.owner.tenant === undefined ? {} : { tenant: job.owner.tenant }),
      step: runner.steps,
      epoch,
      batchInEpoch,
      trainRows: job.data.trainRows,
      batchSize: job.spec.batchSize,
      seed: job.spec.seed,
      bestMetric: at.best,
      epochsSinceBest: at.sinceBest,
      seconds: this.seconds,
    };
    const id = await this.deps.checkpoints.write({ meta, state: await runner.state() });
    crashPoint("checkpoint-written");
    job.emit({ $case: "checkpoint", value: { checkpoint: id, step: BigInt(meta.step), epoch: epoch + 1 } });
  }

  /** Writes the trained model as the next version, loads it, and succeeds only when it serves. */
  private async publish(): Promise<Phase> {
    const { job, deps } = this;
    const spec = job.spec;
    const restored = this.stopReason === "early_stopping" ? this.bestWeights : undefined;
    const metrics = this.finalMetrics(restored?.validation ?? this.lastValidation);
    job.metrics = metrics;
    const doc = `trained by aiaas: ${spec.model}, ${metrics.epochs} epochs, ${metrics.steps} steps${restored ? `, weights of epoch ${restored.epoch} (best validation)` : ""}`;
    const model = restored ? bakeWeights(job.program.forward, restored.params, doc) : await this.runner!.exportModel(doc);
    await this.close();
    const summary = { job: job.id, stopReason: this.stopReason, ...(restored ? { weightsOfEpoch: restored.epoch } : {}), ...metrics, steps: Number(metrics.steps), validationRows: Number(metrics.validationRows) };
    const registry = job.owner.registry;
    const version = await publishVersion(registry.root, spec.model, { model: encodeModel(model), extra: { "metrics.json": JSON.stringify(summary, null, 2) + "\n" } }, job.id, deps.publishLock);
    crashPoint("publish-renamed");
    const loaded = await registry.load(spec.model);
    const published = loaded.versions.find((v) => v.version === version);
    if (!published || published.state !== "ready") {
      // Never leave a version that does not serve: take it out again.
      await withdrawVersion(registry.root, spec.model, version, deps.publishLock);
      await registry.load(spec.model).catch(() => undefined);
      throw new ServerError(Code.INTERNAL, `the trained model was written as version ${version} but did not load: ${published?.reason ?? loaded.reason}`);
    }
    job.publishedVersion = String(version);
    job.emit({ $case: "completed", value: { model: spec.model, version: String(version), metrics, stopReason: this.stopReason } });
    job.succeed();
    deps.logger.info({ job: job.id, model: spec.model, version }, `job ${job.id} published ${spec.model} version ${version}`);
    return "done";
  }

  private finalMetrics(validation: Evaluation | undefined): FinalMetrics {
    const { job } = this;
    const classification = job.program.classification;
    return {
      steps: BigInt(this.runner!.steps),
      epochs: Math.min(this.position.epoch, job.spec.epochs),
      trainLoss: this.lastTrain.loss,
      trainAccuracy: classification ? this.lastTrain.accuracy : 0,
      validationLoss: validation?.loss ?? 0,
      validationAccuracy: classification && validation ? validation.accuracy : 0,
      validationRows: BigInt(validation?.rows ?? 0),
      seconds: this.seconds,
    };
  }
}
