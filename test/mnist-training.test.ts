// The seed CNN trained by the engine on real digits, against PyTorch's run with the same init, data and
// batch order, for three initial-weights seeds fixed in advance (MNIST_PARITY_SEEDS; PyTorch's runs:
// test/fixtures/torch/mnist-reference-seed<k>.json, from scripts/torch-mnist-reference.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ort from "onnxruntime-node";
import { loadMnist } from "../scripts/mnist-data.js";
import { gatherBatch, MNIST_PARITY_SEEDS, trainMnistCnn, type EpochReport } from "../scripts/mnist-training.js";
import { encodeModel } from "../server/src/training/onnx/model-file.js";
import { argmax } from "../scripts/model-zoo.js";

interface TorchRun {
  torch: string;
  epochs: { epoch: number; heldOutAccuracy: number; trainLoss: number }[];
}

const torchRun = (seed: number, suffix = ""): TorchRun =>
  JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "torch", `mnist-reference-seed${seed}${suffix}.json`), "utf8")) as TorchRun;
const relativeGap = (a: number, b: number): number => Math.abs(a - b) / b;
// Beyond epoch 3 the loss tolerance is 3%: PyTorch itself, run with 1 thread instead of 2 (only the summation
// order changes), drifts past 1% there (the test at the end checks that it does).
const LATE_EPOCH_TOLERANCE = 0.03;
const finals: number[] = [];

for (const seed of MNIST_PARITY_SEEDS) {
  test(`seed CNN on MNIST, initial-weights seed ${seed}: PyTorch's held-out accuracy ±0.5 points at every epoch, training loss within 1% for 3 epochs and 3% (PyTorch's own spread) after, and the baked inference graph agrees`, async (t) => {
    const { train, test: heldOut } = loadMnist();
    const torch = torchRun(seed);
    const { reports, model } = await trainMnistCnn(train, heldOut, { epochs: torch.epochs.length, threads: 2, seed });
    t.diagnostic(
      reports
        .map((r: EpochReport) => {
          const ref = torch.epochs[r.epoch - 1]!;
          return `epoch ${r.epoch}: loss ${r.trainLoss.toFixed(4)} (torch ${ref.trainLoss.toFixed(4)}), held-out ${(r.heldOutAccuracy * 100).toFixed(2)}% (torch ${(ref.heldOutAccuracy * 100).toFixed(2)}%)`;
        })
        .join("; "),
    );
    for (const r of reports) {
      const ref = torch.epochs[r.epoch - 1]!;
      assert.ok(Math.abs(r.heldOutAccuracy - ref.heldOutAccuracy) <= 0.005, `epoch ${r.epoch}: held-out ${r.heldOutAccuracy} vs torch ${ref.heldOutAccuracy}`);
      // Float rounding (summation order, fused kernels) compounds over hundreds of Adam steps: the losses agree
      // within 1% for the first 3 epochs and drift after, as PyTorch's do from its own run on another thread count.
      const tolerance = r.epoch <= 3 ? 0.01 : LATE_EPOCH_TOLERANCE;
      assert.ok(relativeGap(r.trainLoss, ref.trainLoss) <= tolerance, `epoch ${r.epoch}: loss ${r.trainLoss} vs torch ${ref.trainLoss}`);
    }
    finals.push(reports.at(-1)!.heldOutAccuracy);
    // The inference graph (weights baked in, no loss) classifies the held-out digits exactly as the eval graph scored them.
    const session = await ort.InferenceSession.create(encodeModel(model));
    const rows = Array.from({ length: heldOut.count }, (_, i) => i);
    const { images } = gatherBatch(heldOut, rows);
    const out = await session.run({ image: new ort.Tensor("float32", images, [heldOut.count, 1, 28, 28]) });
    const probs = out.probabilities!.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < heldOut.count; i++) if (argmax(probs.subarray(i * 10, i * 10 + 10)) === heldOut.labels[i]) correct++;
    assert.equal(correct / heldOut.count, reports.at(-1)!.heldOutAccuracy);
    assert.ok(session.inputNames.length === 1 && !model.graph!.initializer.some((i) => i.name === "aiaas.training"), "no training inputs or flags left");
    await session.release();
  });
}

test("PyTorch against itself (1 thread against 2, same seeds, data and order): within 1% for 3 epochs, past 1% after, and within the 3% the engine is allowed there", (t) => {
  const gaps = MNIST_PARITY_SEEDS.map((seed) => {
    const [two, one] = [torchRun(seed), torchRun(seed, "-threads1")];
    return two.epochs.map((e, i) => relativeGap(one.epochs[i]!.trainLoss, e.trainLoss));
  });
  t.diagnostic(gaps.map((g, k) => `seed ${MNIST_PARITY_SEEDS[k]}: ${g.map((x) => `${(x * 100).toFixed(2)}%`).join(", ")}`).join("; "));
  for (const g of gaps) for (const x of g.slice(0, 3)) assert.ok(x <= 0.01, `PyTorch drifts from itself by ${x} in the first 3 epochs`);
  const late = Math.max(...gaps.flatMap((g) => g.slice(3)));
  assert.ok(late > 0.01, "PyTorch agrees with itself within 1% in the later epochs: tighten LATE_EPOCH_TOLERANCE");
  assert.ok(late <= LATE_EPOCH_TOLERANCE, `PyTorch's own drift (${late}) exceeds the engine's allowance`);
});

test("MNIST over the fixed seeds: mean and minimum held-out accuracy after the last epoch (reported, as the README quotes them)", (t) => {
  assert.equal(finals.length, MNIST_PARITY_SEEDS.length, "every seed ran");
  const mean = finals.reduce((a, b) => a + b, 0) / finals.length;
  t.diagnostic(`held-out accuracy over seeds ${MNIST_PARITY_SEEDS.join(", ")}: mean ${(mean * 100).toFixed(2)}%, minimum ${(Math.min(...finals) * 100).toFixed(2)}%`);
});
