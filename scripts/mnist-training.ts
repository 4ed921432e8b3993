// Trains the seed CNN on the `mnist` package's digits with the engine: the loop the accuracy test, the
// training benchmark and the embedded repository's mnist-cnn share.
import type { ModelProto } from "onnx-buf";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { bakeWeights, buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner } from "../server/src/training/engine/train-runner.js";
import { epochOrder, type MnistSplit } from "./mnist-data.js";
import { SEED_CNN } from "./reference-models.js";

export const MNIST_CNN_SEED = 4;
/** The initial-weights seeds the MNIST parity check runs, fixed before any run and never tuned. */
export const MNIST_PARITY_SEEDS: readonly number[] = [1, 2, 3];
export const MNIST_BATCH = 64;
export const MNIST_LR = 1e-3;

export interface EpochReport {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly heldOutAccuracy: number;
  readonly examplesPerSecond: number;
}

export function gatherBatch(split: MnistSplit, rows: ArrayLike<number>): { images: Float32Array; labels: BigInt64Array } {
  const images = new Float32Array(rows.length * 784);
  const labels = new BigInt64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    images.set(split.images.subarray(r * 784, r * 784 + 784), i * 784);
    labels[i] = BigInt(split.labels[r]!);
  }
  return { images, labels };
}

/** Trains with Adam(1e-3), batch 64, the shared epoch order; reports held-out accuracy after every epoch. */
export async function trainMnistCnn(
  train: MnistSplit,
  test: MnistSplit,
  options: { epochs: number; threads: number; seed?: number; onEpoch?: (r: EpochReport) => void },
): Promise<{ reports: EpochReport[]; model: ModelProto }> {
  const forward = buildArchitecture(SEED_CNN, { seed: options.seed ?? MNIST_CNN_SEED, name: "mnist_cnn" });
  const program = buildTrainProgram(forward, { loss: { kind: "cross-entropy", output: "logits" }, optimizer: { type: "adam" } });
  const runner = await createTrainRunner(program, { threads: options.threads });
  const reports: EpochReport[] = [];
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = epochOrder(train.count, epoch);
      let lossSum = 0;
      let batches = 0;
      const started = performance.now();
      for (let s = 0; s + MNIST_BATCH <= train.count; s += MNIST_BATCH) {
        const { images, labels } = gatherBatch(train, order.subarray(s, s + MNIST_BATCH));
        const r = await runner.step(
          { image: { type: "float32", dims: [MNIST_BATCH, 1, 28, 28], data: images }, labels: { type: "int64", dims: [MNIST_BATCH], data: labels } },
          MNIST_LR,
        );
        if (!Number.isFinite(r.loss)) throw new Error(`loss became ${r.loss} at epoch ${epoch + 1}`);
        lossSum += r.loss;
        batches++;
      }
      const seconds = (performance.now() - started) / 1000;
      const report = {
        epoch: epoch + 1,
        trainLoss: lossSum / batches,
        heldOutAccuracy: await heldOutAccuracy(runner, test),
        examplesPerSecond: (batches * MNIST_BATCH) / seconds,
      };
      reports.push(report);
      options.onEpoch?.(report);
    }
    const model = bakeWeights(forward, await runner.parameters(), "MNIST CNN (seed architecture) trained by the aiaas engine");
    return { reports, model };
  } finally {
    await runner.close();
  }
}

async function heldOutAccuracy(runner: Awaited<ReturnType<typeof createTrainRunner>>, test: MnistSplit): Promise<number> {
  let correct = 0;
  for (let s = 0; s < test.count; s += 500) {
    const rows = Array.from({ length: Math.min(500, test.count - s) }, (_, i) => s + i);
    const { images, labels } = gatherBatch(test, rows);
    const r = await runner.evaluate({
      image: { type: "float32", dims: [rows.length, 1, 28, 28], data: images },
      labels: { type: "int64", dims: [rows.length], data: labels },
    });
    correct += r.correct!;
  }
  return correct / test.count;
}
