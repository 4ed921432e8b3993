// Writes the embedded default model repository (`npm run models`). The files are committed so that
// `npm start` needs nothing but `npm ci`; rerunning this script reproduces them byte for byte.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { encodeModel } from "../server/src/training/onnx/index.js";
import { loadMnist } from "./mnist-data.js";
import { buildMnistLinear, fitMnistLinear } from "./model-zoo.js";
import { trainMnistCnn } from "./mnist-training.js";

const root = resolve(process.argv[2] ?? "models");

async function put(model: string, config: object, bytes: Uint8Array): Promise<void> {
  await mkdir(join(root, model, "1"), { recursive: true });
  await writeFile(join(root, model, "config.json"), JSON.stringify(config, null, 2) + "\n");
  await writeFile(join(root, model, "1", "model.onnx"), bytes);
}

const { train, test } = loadMnist();
const fit = fitMnistLinear(train, test);
console.log(`mnist-linear: held-out accuracy ${(fit.accuracy * 100).toFixed(1)}% on ${test.count} digits`);
await put(
  "mnist-linear",
  { max_batch_size: 256, max_queue_delay_us: 0, max_queue_size: 4096, default_timeout_ms: 10000 },
  encodeModel(buildMnistLinear(fit.weight, fit.bias, `MNIST softmax regression, held-out accuracy ${(fit.accuracy * 100).toFixed(1)}%`)),
);
// The seed CNN, trained by the project's own engine (5 epochs, Adam 1e-3, batch 64; one thread so the bytes
// are the same on every run).
const cnn = await trainMnistCnn(train, test, { epochs: 5, threads: 1, onEpoch: (r) => console.log(`mnist-cnn: epoch ${r.epoch}, held-out ${(r.heldOutAccuracy * 100).toFixed(2)}%`) });
await put(
  "mnist-cnn",
  { max_batch_size: 64, max_queue_delay_us: 0, max_queue_size: 4096, default_timeout_ms: 10000 },
  encodeModel(cnn.model),
);
// A real held-out digit as a PredictRequest in proto JSON, for grpcurl / buf curl sessions (README).
const sample = Array.from(test.images.subarray(0, 784), (v) => Math.round(v * 1000) / 1000);
const request = {
  model: "mnist-linear",
  id: `digit-${test.labels[0]}`,
  inputs: [{ name: "image", datatype: "DATA_TYPE_FP32", shape: [1, 784], fp32_data: sample }],
  outputs: ["probabilities"],
};
await mkdir(resolve("examples", "requests"), { recursive: true });
await writeFile(resolve("examples", "requests", "predict-digit.json"), JSON.stringify(request) + "\n");
console.log(`wrote ${root} and examples/requests/predict-digit.json (a ${test.labels[0]})`);
