// Train the seed CNN on real MNIST digits through the SDK, watch it learn, then use the new version.
//   npm start                        (in one terminal: serves models/)
//   npm run example:train-mnist      (in another: publishes models/mnist-cnn/<next version>)
// EXAMPLE_EPOCHS (default 5) and EXAMPLE_MODEL (default mnist-cnn) change what it trains.
import { createClient, Tensor, type TrainChunk, type TrainSpecInput } from "@aiaas/sdk";
import { loadMnist } from "../scripts/mnist-data.js";

const client = createClient({ address: process.env.AIAAS_ADDRESS ?? "localhost:50051" });
const { train, test } = loadMnist(); // 8,000 digits to train on, 2,000 held out
const model = process.env.EXAMPLE_MODEL ?? "mnist-cnn";

const spec: TrainSpecInput = {
  model,
  architecture: {
    input: { name: "image", dims: [1, 28, 28] },
    layers: [
      { type: "conv2d", filters: 32, kernel: 3, padding: 1 },
      { type: "relu" },
      { type: "maxpool2d", size: 2 },
      { type: "conv2d", filters: 64, kernel: 3, padding: 1 },
      { type: "relu" },
      { type: "maxpool2d", size: 2 },
      { type: "flatten" },
      { type: "dense", units: 128 },
      { type: "relu" },
      { type: "dense", units: 10 },
    ],
  },
  optimizer: { type: "adam", learningRate: 1e-3 },
  batchSize: 64,
  epochs: Number(process.env.EXAMPLE_EPOCHS ?? 5),
  seed: 4,
  metricsIntervalSteps: 25,
};

/** The digits as chunks of 1,000 rows; the held-out ones go as validation data. */
function* chunks(): Generator<TrainChunk> {
  for (const [split, validation] of [[train, false], [test, true]] as const) {
    for (let start = 0; start < split.count; start += 1000) {
      const end = Math.min(start + 1000, split.count);
      yield {
        inputs: { image: Tensor.float32([end - start, 1, 28, 28], split.images.subarray(start * 784, end * 784)) },
        labels: Tensor.int64([end - start], Array.from(split.labels.subarray(start, end), BigInt)),
        validation,
      };
    }
  }
}

let version = "";
for await (const event of client.train(spec, chunks())) {
  switch (event.type) {
    case "state":
      console.log(`[${event.state}] ${event.message}`);
      break;
    case "metrics":
      console.log(
        `epoch ${event.epoch} step ${event.step}/${event.totalSteps}: loss ${event.trainLoss.toFixed(4)}, accuracy ${(event.trainAccuracy * 100).toFixed(1)}%, ${event.examplesPerSecond.toFixed(0)} examples/s, ETA ${event.etaSeconds.toFixed(0)} s`,
      );
      break;
    case "validation":
      console.log(`epoch ${event.epoch}: held-out loss ${event.loss.toFixed(4)}, accuracy ${(event.accuracy * 100).toFixed(2)}%`);
      break;
    case "completed":
      version = event.version;
      console.log(`published ${event.model} version ${event.version} after ${event.metrics.seconds.toFixed(1)} s of training`);
      break;
  }
}

// The new version serves at once: score it on the held-out digits with Predict.
let correct = 0;
const rows = 64;
for (let start = 0; start < test.count; start += rows) {
  const end = Math.min(start + rows, test.count);
  const r = await client.predict<"probabilities">(model, { image: Tensor.float32([end - start, 1, 28, 28], test.images.subarray(start * 784, end * 784)) }, {
    version,
    outputs: ["probabilities"],
  });
  const p = r.outputs.probabilities.data as Float32Array;
  for (let i = 0; i < end - start; i++) {
    const row = p.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === test.labels[start + i]) correct++;
  }
}
console.log(`held-out accuracy of ${model} version ${version} by Predict: ${((correct / test.count) * 100).toFixed(2)}% of ${test.count} digits`);
client.close();
