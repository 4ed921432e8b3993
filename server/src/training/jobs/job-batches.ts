import type { ConstTensor } from "../onnx/graph-builder.js";
import type { TrainRunner } from "../engine/train-runner.js";
import { seededRandom, shuffleInPlace } from "../seeded-random.js";
import type { TrainJob } from "./train-job.js";

/** A seeded permutation of 0..n-1: the order of one epoch (or of the validation hold-out). */
export function permutation(n: number, seed: number, salt: number): Uint32Array {
  return shuffleInPlace(Uint32Array.from({ length: n }, (_, i) => i), seededRandom((seed * 7919 + salt * 104_729) >>> 0));
}

/** The feeds of one batch: the given rows of each input column and of the labels. */
export function batchFeeds(job: TrainJob, which: "train" | "validation", rows: ArrayLike<number>): Record<string, ConstTensor> {
  const { inputs, labels } = job.data.columns(which);
  const feeds: Record<string, ConstTensor> = {};
  for (const input of job.program.inputs) {
    const column = inputs.get(input.name)!;
    feeds[input.name] = { type: column.type, dims: [rows.length, ...job.data.rowDimsOf(input.name)], data: column.gather(rows) };
  }
  feeds[job.program.labels.name] = { type: labels.type, dims: [rows.length, ...job.data.rowDimsOf("\u0000labels")], data: labels.gather(rows) };
  return feeds;
}

export interface Evaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly rows: number;
}

/** Loss and accuracy over the held-out rows, in batches of `batchSize`. */
export async function evaluateHeldOut(job: TrainJob, runner: TrainRunner, batchSize: number): Promise<Evaluation> {
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
