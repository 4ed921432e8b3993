// Writes the embedded default model repository (`npm run models`). The files are committed so that
// `npm start` needs nothing but `npm ci`; rerunning this script reproduces them byte for byte.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { encodeModel } from "../server/src/training/onnx/index.js";
import { loadMnist } from "./mnist-data.js";
import { buildMnistLinear, fitMnistLinear } from "./model-zoo.js";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { pino } from "pino";
import { startServer } from "../server/src/server.js";

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
// The seed CNN, as examples/train-mnist.ts trains it through the Train RPC: the example runs against a server
// over a scratch repository and its published model becomes mnist-cnn version 1. Training runs on one thread,
// so the bytes are the same on every run.
const scratch = await mkdtemp(join(tmpdir(), "aiaas-models-"));
const server = await startServer({ modelsDir: scratch, host: "127.0.0.1", port: 0, providers: ["cpu"], logger: pino({ level: "warn" }), http: undefined });
try {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", resolve("examples", "train-mnist.ts")], {
    env: { ...process.env, AIAAS_ADDRESS: server.address, EXAMPLE_EPOCHS: "5" },
  });
  process.stdout.write(stdout.split("\n").filter((l) => /held-out|published/.test(l)).map((l) => `mnist-cnn: ${l}\n`).join(""));
  await put("mnist-cnn", { max_batch_size: 64, max_queue_delay_us: 0, max_queue_size: 4096, default_timeout_ms: 10000 }, new Uint8Array());
  await copyFile(join(scratch, "mnist-cnn", "1", "model.onnx"), join(root, "mnist-cnn", "1", "model.onnx"));
} finally {
  await server.shutdown();
  await rm(scratch, { recursive: true, force: true });
}
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
