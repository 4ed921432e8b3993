// The seed CNN trained by the engine on real digits, against PyTorch's run with the same init, data and
// batch order (test/fixtures/torch/mnist-reference.json, from scripts/torch-mnist-reference.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ort from "onnxruntime-node";
import { loadMnist } from "../scripts/mnist-data.js";
import { gatherBatch, trainMnistCnn } from "../scripts/mnist-training.js";
import { encodeModel } from "../server/src/training/onnx/model-file.js";
import { argmax } from "../scripts/model-zoo.js";

const torch = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "torch", "mnist-reference.json"), "utf8")) as {
  torch: string;
  epochs: { epoch: number; heldOutAccuracy: number; trainLoss: number }[];
};

test("seed CNN on MNIST: PyTorch's held-out accuracy ±0.5 points after 3 epochs, ≥ 97% after 5, and the baked inference graph agrees", async (t) => {
  const { train, test: heldOut } = loadMnist();
  const { reports, model } = await trainMnistCnn(train, heldOut, { epochs: 5, threads: 2 });
  for (const r of reports) {
    const ref = torch.epochs[r.epoch - 1]!;
    t.diagnostic(
      `epoch ${r.epoch}: loss ${r.trainLoss.toFixed(4)} (torch ${ref.trainLoss.toFixed(4)}), held-out ${(r.heldOutAccuracy * 100).toFixed(2)}% (torch ${(ref.heldOutAccuracy * 100).toFixed(2)}%), ${r.examplesPerSecond.toFixed(0)} examples/s`,
    );
  }
  const third = reports[2]!.heldOutAccuracy;
  assert.ok(Math.abs(third - torch.epochs[2]!.heldOutAccuracy) <= 0.005, `after 3 epochs ${third} vs torch ${torch.epochs[2]!.heldOutAccuracy}`);
  assert.ok(reports[4]!.heldOutAccuracy >= 0.97, `after 5 epochs ${reports[4]!.heldOutAccuracy}`);
  // Losses follow torch's curve, epoch by epoch.
  reports.forEach((r, i) => assert.ok(Math.abs(r.trainLoss - torch.epochs[i]!.trainLoss) < 0.02, `epoch ${i + 1} loss ${r.trainLoss}`));

  // The inference graph (weights baked in, no loss) classifies the held-out digits exactly as the eval graph scored them.
  const session = await ort.InferenceSession.create(encodeModel(model));
  const rows = Array.from({ length: heldOut.count }, (_, i) => i);
  const { images } = gatherBatch(heldOut, rows);
  const out = await session.run({ image: new ort.Tensor("float32", images, [heldOut.count, 1, 28, 28]) });
  const probs = out.probabilities!.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < heldOut.count; i++) if (argmax(probs.subarray(i * 10, i * 10 + 10)) === heldOut.labels[i]) correct++;
  assert.equal(correct / heldOut.count, reports[4]!.heldOutAccuracy);
  assert.ok(session.inputNames.length === 1 && !model.graph!.initializer.some((i) => i.name === "aiaas.training"), "no training inputs or flags left");
  await session.release();
});
