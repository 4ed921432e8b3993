import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { JobState, type FinalMetrics } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import { Code, ServerError } from "../../common/errors.js";
import { publishVersion } from "../../repository/index.js";
import { encodeModel } from "../onnx/model-file.js";
import { createTrainRunner, type TrainRunner } from "../engine/train-runner.js";
import { bakeWeights } from "../engine/train-program.js";
import type { ConstTensor } from "../onnx/graph-builder.js";
import type { HostTensor, StepResult } from "../engine/train-worker-protocol.js";
import { seededRandom, shuffleInPlace } from "../seeded-random.js";
import type { CheckpointStore, CheckpointMeta } from "./checkpoint-store.js";
import type { TrainJob } from "./train-job.js";

export interface RunJobDeps {
  readonly checkpoints: CheckpointStore;
  readonly threads: number;
  readonly providers: readonly ("cuda" | "cpu")[];
  readonly logger: Logger;
}

/** A seeded permutation of 0..n-1: the order of one epoch (or of the validation hold-out). */
export function permutation(n: number, seed: number, salt: number): Uint32Array {
  return shuffleInPlace(Uint32Array.from({ length: n }, (_, i) => i), seededRandom((seed * 7919 + salt * 104_729) >>> 0));
}

function batchFeeds(job: TrainJob, which: "train" | "validation", rows: ArrayLike<number>): Record<string, HostTensor> {
  const { inputs, labels } = job.data.columns(which);
  const feeds: Record<string, HostTensor> = {};
  for (const input of job.program.inputs) {
    feeds[input.name] = { type: inputs.get(input.name)!.type, dims: [rows.length, ...job.data.rowDimsOf(input.name)], data: inputs.get(input.name)!.gather(rows) };
  }
  feeds[job.program.labels.name] = { type: labels.type, dims: [rows.length, ...job.data.rowDimsOf("\u0000labels")], data: labels.gather(rows) };
  return feeds;
}

const classification = (job: TrainJob): boolean => job.program.classification;

async function evaluate(job: TrainJob, runner: TrainRunner, batchSize: number): Promise<{ loss: number; accuracy: number; rows: number }> {
  const rows = job.data.validationRows;
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < rows; s += batchSize) {
    const slice = Array.from({ length: Math.min(batchSize, rows - s) }, (_, i) => s + i);
    const r = await runner.evaluate(batchFeeds(job, "validation", slice));
    loss += r.loss * slice.length;
    correct += r.correct ?? 0;
  }
  return { loss: loss / rows, accuracy: correct / rows, rows };
}

/**
 * Trains a job whose data is complete, then publishes the result: VALIDATING → RUNNING → SUCCEEDED, or FAILED /
 * CANCELLED. Epochs visit the rows in a seeded order, metrics go out every few steps, validation after every
 * epoch, checkpoints at the configured interval, and a NaN or infinite loss stops the job.
 */
export async function runJob(job: TrainJob, deps: RunJobDeps): Promise<void> {
  const spec = job.spec;
  let runner: TrainRunner | undefined;
  try {
    job.setState(JobState.JOB_STATE_VALIDATING, "checking the data and building the train step");
    if (job.data.trainRows === 0) throw new ServerError(Code.INVALID_ARGUMENT, "no training rows arrived: send TrainData chunks before ending the stream");
    if (job.data.validationRows === 0 && spec.validationFraction > 0) {
      const count = Math.floor(job.data.trainRows * spec.validationFraction);
      if (count > 0 && count < job.data.trainRows) job.data.holdOut(permutation(job.data.trainRows, spec.seed, 1).subarray(0, count));
    }
    const trainRows = job.data.trainRows;
    const stepsPerEpoch = Math.ceil(trainRows / spec.batchSize);
    job.totalSteps = spec.maxSteps > 0 ? Math.min(spec.maxSteps, stepsPerEpoch * spec.epochs) : stepsPerEpoch * spec.epochs;
    runner = await createTrainRunner(job.program, { threads: deps.threads, providers: deps.providers });
    if (runner.fallbackReason) deps.logger.warn({ job: job.id }, `training on CPU: ${runner.fallbackReason}`);

    let epoch = 0;
    let batchInEpoch = 0;
    let best: number | null = null;
    let sinceBest = 0;
    // With early stopping, the weights of the best validation epoch are what gets published (as Keras'
    // restore_best_weights): a copy is kept each time validation improves.
    let bestWeights: { params: Map<string, ConstTensor>; validation: { loss: number; accuracy: number; rows: number }; epoch: number } | undefined;
    let secondsBefore = 0;
    if (spec.resumeFrom) {
      const ckpt = await deps.checkpoints.read(job.owner.tenant, spec.resumeFrom.jobId, spec.resumeFrom.checkpointId);
      const m = ckpt.meta;
      if (m.trainRows !== trainRows || m.batchSize !== spec.batchSize || m.seed !== spec.seed) {
        throw new ServerError(
          Code.FAILED_PRECONDITION,
          `checkpoint ${spec.resumeFrom.jobId}/${spec.resumeFrom.checkpointId} was made with ${m.trainRows} training rows, batch size ${m.batchSize} and seed ${m.seed}; this job has ${trainRows}, ${spec.batchSize} and ${spec.seed}: resume with the same spec and data`,
        );
      }
      await runner.restore(ckpt.state, m.step).catch((error: Error) => {
        throw new ServerError(Code.FAILED_PRECONDITION, `checkpoint does not fit this model: ${error.message}`);
      });
      ({ epoch, batchInEpoch } = m);
      best = m.bestMetric;
      sinceBest = m.epochsSinceBest;
      secondsBefore = m.seconds;
    }
    job.step = runner.steps;
    job.setState(JobState.JOB_STATE_RUNNING, `training on ${trainRows} rows, ${job.data.validationRows} held out, ${job.totalSteps} steps`);
    const started = performance.now();
    const seconds = (): number => secondsBefore + (performance.now() - started) / 1000;
    let stopReason = "epochs";
    let windowLoss = 0;
    let windowCorrect = 0;
    let windowRows = 0;
    let windowSteps = 0;
    let windowStart = performance.now();
    let lastTrain = { loss: NaN, accuracy: NaN };
    let lastValidation: { loss: number; accuracy: number; rows: number } | undefined;

    const checkpoint = async (): Promise<void> => {
      const meta: CheckpointMeta = {
        jobId: job.id,
        ...(job.owner.tenant === undefined ? {} : { tenant: job.owner.tenant }),
        step: runner!.steps,
        epoch,
        batchInEpoch,
        trainRows,
        batchSize: spec.batchSize,
        seed: spec.seed,
        bestMetric: best,
        epochsSinceBest: sinceBest,
        seconds: seconds(),
      };
      const id = await deps.checkpoints.write({ meta, state: await runner!.state() });
      job.emit({ $case: "checkpoint", value: { checkpoint: id, step: BigInt(meta.step), epoch: epoch + 1 } });
    };

    outer: for (; epoch < spec.epochs; epoch++, batchInEpoch = 0) {
      job.epoch = epoch + 1;
      const order = permutation(trainRows, spec.seed, 1000 + epoch);
      // The next batch is gathered while the worker runs the current step.
      let next = batchInEpoch < stepsPerEpoch ? batchFeeds(job, "train", order.subarray(batchInEpoch * spec.batchSize, (batchInEpoch + 1) * spec.batchSize)) : undefined;
      while (next) {
        if (job.cancelSignal.aborted) break outer;
        if (spec.maxSteps > 0 && runner.steps >= spec.maxSteps) {
          stopReason = "max_steps";
          break outer;
        }
        if (spec.maxSeconds > 0 && seconds() >= spec.maxSeconds) {
          stopReason = "max_seconds";
          break outer;
        }
        const rows = next[job.program.labels.name]!.dims[0]!;
        const pending: Promise<StepResult> = runner.step(next, spec.learningRate);
        batchInEpoch++;
        next =
          batchInEpoch < stepsPerEpoch ? batchFeeds(job, "train", order.subarray(batchInEpoch * spec.batchSize, (batchInEpoch + 1) * spec.batchSize)) : undefined;
        const result = await pending;
        job.step = runner.steps;
        if (!Number.isFinite(result.loss)) {
          throw new ServerError(
            Code.FAILED_PRECONDITION,
            `the loss became ${result.loss} at step ${runner.steps} (epoch ${epoch + 1}): training diverged; lower the learning rate (${spec.learningRate}) or check the data's scale`,
          );
        }
        windowLoss += result.loss * rows;
        windowCorrect += result.correct ?? 0;
        windowRows += rows;
        windowSteps++;
        if (windowSteps >= spec.metricsIntervalSteps || (!next && epoch === spec.epochs - 1)) {
          const elapsed = (performance.now() - windowStart) / 1000;
          const rate = windowRows / Math.max(elapsed, 1e-9);
          lastTrain = { loss: windowLoss / windowRows, accuracy: windowCorrect / windowRows };
          job.emit({
            $case: "metrics",
            value: {
              step: BigInt(runner.steps),
              epoch: epoch + 1,
              trainLoss: lastTrain.loss,
              trainAccuracy: classification(job) ? lastTrain.accuracy : 0,
              learningRate: spec.learningRate,
              examplesPerSecond: rate,
              etaSeconds: ((job.totalSteps - runner.steps) * spec.batchSize) / Math.max(rate, 1e-9),
              totalSteps: BigInt(job.totalSteps),
            },
          });
          windowLoss = windowCorrect = windowRows = windowSteps = 0;
          windowStart = performance.now();
        }
        if (spec.checkpointIntervalSteps > 0 && runner.steps % spec.checkpointIntervalSteps === 0) await checkpoint();
      }
      if (job.cancelSignal.aborted) break;
      if (job.data.validationRows > 0) {
        lastValidation = await evaluate(job, runner, Math.max(spec.batchSize, 256));
        job.emit({
          $case: "validation",
          value: {
            epoch: epoch + 1,
            step: BigInt(runner.steps),
            loss: lastValidation.loss,
            accuracy: classification(job) ? lastValidation.accuracy : 0,
            rows: BigInt(lastValidation.rows),
          },
        });
        if (spec.earlyStopping) {
          const value = spec.earlyStopping.metric === "accuracy" ? lastValidation.accuracy : -lastValidation.loss;
          if (best === null || value > best + spec.earlyStopping.minDelta) {
            best = value;
            sinceBest = 0;
            bestWeights = { params: await runner.parameters(), validation: lastValidation, epoch: epoch + 1 };
          } else if (++sinceBest >= spec.earlyStopping.patience) {
            batchInEpoch = 0;
            epoch++;
            stopReason = "early_stopping";
            break;
          }
        }
      }
      if (spec.checkpointIntervalSteps === 0 && epoch < spec.epochs - 1) {
        batchInEpoch = 0;
        epoch++;
        await checkpoint();
        epoch--;
      }
    }
    if (job.cancelSignal.aborted) {
      job.finishCancelled("cancelled; nothing was published");
      return;
    }

    const restored = stopReason === "early_stopping" ? bestWeights : undefined;
    const validation = restored?.validation ?? lastValidation;
    const metrics: FinalMetrics = {
      steps: BigInt(runner.steps),
      epochs: Math.min(epoch, spec.epochs),
      trainLoss: lastTrain.loss,
      trainAccuracy: classification(job) ? lastTrain.accuracy : 0,
      validationLoss: validation?.loss ?? 0,
      validationAccuracy: classification(job) && validation ? validation.accuracy : 0,
      validationRows: BigInt(validation?.rows ?? 0),
      seconds: seconds(),
    };
    job.metrics = metrics;
    const doc = `trained by aiaas: ${spec.model}, ${metrics.epochs} epochs, ${metrics.steps} steps${restored ? `, weights of epoch ${restored.epoch} (best validation)` : ""}`;
    const model = restored ? bakeWeights(job.program.forward, restored.params, doc) : await runner.exportModel(doc);
    await runner.close();
    runner = undefined;
    const registry = job.owner.registry;
    const version = await publishVersion(
      registry.root,
      spec.model,
      {
        model: encodeModel(model),
        extra: {
          "metrics.json":
            JSON.stringify(
              { job: job.id, stopReason, ...(restored ? { weightsOfEpoch: restored.epoch } : {}), ...metrics, steps: Number(metrics.steps), validationRows: Number(metrics.validationRows) },
              null,
              2,
            ) + "\n",
        },
      },
      job.id,
    );
    const loaded = await registry.load(spec.model);
    const published = loaded.versions.find((v) => v.version === version);
    if (!published || published.state !== "ready") {
      // Never leave a version that does not serve: take it out again.
      await rm(join(registry.root, spec.model, String(version)), { recursive: true, force: true });
      await registry.load(spec.model).catch(() => undefined);
      throw new ServerError(Code.INTERNAL, `the trained model was written as version ${version} but did not load: ${published?.reason ?? loaded.reason}`);
    }
    job.publishedVersion = String(version);
    job.emit({ $case: "completed", value: { model: spec.model, version: String(version), metrics, stopReason } });
    job.succeed();
    deps.logger.info({ job: job.id, model: spec.model, version }, `job ${job.id} published ${spec.model} version ${version}`);
  } catch (error) {
    const e = ServerError.from(error);
    // Internal error text stays in the log; the client gets an incident id that finds it there.
    const incident = randomUUID().slice(0, 8);
    if (e.code === Code.INTERNAL) deps.logger.error({ err: error, job: job.id, incident }, `job ${job.id} failed (incident ${incident})`);
    if (job.cancelSignal.aborted && !job.error) job.finishCancelled("cancelled; nothing was published");
    else job.fail(e.code, e.code === Code.INTERNAL && !(error instanceof ServerError) ? `internal error (incident ${incident}; the server's log has the details)` : e.message);
  } finally {
    await runner?.close();
  }
}
