// PyTorch's runs of the MNIST parity check: for each initial-weights seed (MNIST_PARITY_SEEDS, fixed before any
// run), exports the seed CNN's initial weights (the engine's own init), the 8,000/2,000 digits and every
// epoch's batch order, then trains in torch with the same Adam settings. Writes
// test/fixtures/torch/mnist-reference-seed<k>.json, which test/mnist-training.test.ts compares against. With 1
// thread it writes mnist-reference-seed<k>-threads1.json: PyTorch again with another summation order, which
// measures how far PyTorch drifts from itself (the test's yardstick for the later epochs).
// Developer tool (python3-torch). Run: node --import tsx scripts/torch-mnist-reference.ts [epochs] [threads] [seed …]
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { Graph } from "../server/src/training/onnx/graph.js";
import { epochOrder, loadMnist } from "./mnist-data.js";
import { MNIST_BATCH, MNIST_LR, MNIST_PARITY_SEEDS } from "./mnist-training.js";
import { SEED_CNN } from "./reference-models.js";
import { writeBundle, type BundleTensor } from "../server/src/training/tensor-bundle.js";

const epochs = Number(process.argv[2] ?? 5);
const threads = Number(process.argv[3] ?? 2);
const seeds = process.argv.length > 4 ? process.argv.slice(4).map(Number) : MNIST_PARITY_SEEDS;
const { train, test } = loadMnist();
for (const seed of seeds) {
  const tensors = new Map<string, BundleTensor>();
  for (const [name, t] of Graph.fromModel(buildArchitecture(SEED_CNN, { seed })).initializers) {
    if (t.type === "float32" && t.dims.length > 0) tensors.set(`param:${name}`, { type: "float32", dims: t.dims, data: t.data as Float32Array });
  }
  tensors.set("train.images", { type: "float32", dims: [train.count, 1, 28, 28], data: train.images });
  tensors.set("train.labels", { type: "int64", dims: [train.count], data: BigInt64Array.from(train.labels, BigInt) });
  tensors.set("test.images", { type: "float32", dims: [test.count, 1, 28, 28], data: test.images });
  tensors.set("test.labels", { type: "int64", dims: [test.count], data: BigInt64Array.from(test.labels, BigInt) });
  const orders = new BigInt64Array(epochs * train.count);
  for (let e = 0; e < epochs; e++) orders.set(Array.from(epochOrder(train.count, e), BigInt), e * train.count);
  tensors.set("orders", { type: "int64", dims: [epochs, train.count], data: orders });
  const input = join(mkdtempSync(join(tmpdir(), "aiaas-mnist-")), "mnist.bin");
  writeBundle(input, { meta: { spec: SEED_CNN, epochs, threads, batch: MNIST_BATCH, lr: MNIST_LR }, tensors });
  const out = join(import.meta.dirname, "..", "test", "fixtures", "torch", `mnist-reference-seed${seed}${threads === 2 ? "" : `-threads${threads}`}.json`);
  execFileSync("/usr/bin/python3", [join(import.meta.dirname, "torch_reference.py"), "mnist", input, out], { stdio: "inherit" });
  console.log(`wrote ${out}`);
}
