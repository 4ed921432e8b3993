// The engine against PyTorch autograd and torch.optim on the same weights and batches: the seed CNN, an RNN,
// an attention model and a 2-layer transformer encoder. Fixtures: scripts/torch-fixtures.ts (python3-torch).
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import ort from "onnxruntime-node";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { buildGradientModel, buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner } from "../server/src/training/engine/train-runner.js";
import { encodeModel } from "../server/src/training/onnx/model-file.js";
import { ADAM_STEPS, REFERENCE_MODELS, referenceBatch, type ReferenceModel } from "../scripts/reference-models.js";
import { readBundle } from "../server/src/training/tensor-bundle.js";

const LOSS = { kind: "cross-entropy", output: "logits" } as const;

/** max |a - b| relative to the reference's largest magnitude. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

function feeds(model: ReferenceModel, k: number): Record<string, ort.Tensor> {
  const b = referenceBatch(model, k);
  const name = model.spec.input.name ?? "input";
  return {
    [name]: new ort.Tensor(model.vocab ? "int64" : "float32", b.input, b.dims),
    labels: new ort.Tensor("int64", b.labels, [model.batch]),
  };
}

for (const model of REFERENCE_MODELS) {
  const torch = readBundle(join(import.meta.dirname, "fixtures", "torch", `${model.name}.bin`));
  const forward = buildArchitecture(model.spec, { seed: model.seed });

  test(`${model.name}: loss and every parameter gradient equal PyTorch autograd`, async (t) => {
    const { model: gradModel, params } = buildGradientModel(forward, { loss: LOSS });
    const session = await ort.InferenceSession.create(encodeModel(gradModel));
    const out = await session.run(feeds(model, 0));
    const expectedLoss = torch.meta.loss as number;
    assert.ok(Math.abs(Number(out.loss!.data[0]) - expectedLoss) <= 1e-5 * Math.max(1, Math.abs(expectedLoss)), `loss ${out.loss!.data[0]} vs torch ${expectedLoss}`);
    const torchParams = [...torch.tensors.keys()].filter((k) => k.startsWith("grad:")).map((k) => k.slice(5));
    assert.deepEqual([...params].sort(), [...torchParams].sort(), "the same parameters are trained");
    let worst = 0;
    for (const p of params) {
      const err = relativeError(out[`grad.${p}`]!.data as Float32Array, torch.tensors.get(`grad:${p}`)!.data as Float32Array);
      assert.ok(err < 1e-4, `gradient of ${p}: relative error ${err}`);
      worst = Math.max(worst, err);
    }
    t.diagnostic(`loss ${expectedLoss.toFixed(6)}; ${params.length} gradients, worst relative error ${worst.toExponential(2)}`);
    await session.release();
  });

  for (const opt of model.optimizers) {
    test(`${model.name}: ${ADAM_STEPS} ${opt.name} steps equal torch.optim`, async (t) => {
      const program = buildTrainProgram(forward, { loss: LOSS, optimizer: opt.spec });
      const runner = await createTrainRunner(program, { threads: 1 });
      try {
        const losses: number[] = [];
        for (let k = 0; k < ADAM_STEPS; k++) {
          const f = feeds(model, k);
          const host = Object.fromEntries(Object.entries(f).map(([name, v]) => [name, { type: v.type as "float32", dims: [...v.dims], data: v.data as Float32Array }]));
          losses.push((await runner.step(host, opt.lr)).loss);
        }
        const expected = (torch.meta.optimizers as Record<string, { losses: number[] }>)[opt.name]!.losses;
        losses.forEach((l, i) => assert.ok(Math.abs(l - expected[i]!) < 1e-4, `loss of step ${i + 1}: ${l} vs torch ${expected[i]}`));
        const params = await runner.parameters();
        let worst = 0;
        let skipped = 0;
        let total = 0;
        for (const [name, tensor] of params) {
          const actual = tensor.data as Float32Array;
          const expected = torch.tensors.get(`${opt.name}:${name}`)!.data as Float32Array;
          const grad = torch.tensors.get(`grad:${name}`)!.data as Float32Array;
          // Adam divides a gradient by its own magnitude, so where the true gradient is zero (a key bias under
          // softmax, a unit no example activates) it turns float noise of 1e-9 into a full-size step in both
          // frameworks, in unrelated directions. Those elements are counted, not compared.
          const gradScale = grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-12);
          // Adam moves each element by about lr per step whatever the gradient's size, so its float noise is
          // judged against that movement: 1% of lr × steps, on top of 1e-4 of the tensor's scale.
          const tolerance = 1e-4 * scale + (opt.spec.type === "sgd" ? 0 : 0.01 * opt.lr * ADAM_STEPS);
          for (let i = 0; i < expected.length; i++) {
            total++;
            if (opt.spec.type !== "sgd" && grad[i] !== 0 && Math.abs(grad[i]!) <= 1e-5 * gradScale) {
              skipped++;
              continue;
            }
            const err = Math.abs(actual[i]! - expected[i]!) / scale;
            assert.ok(err < tolerance / scale, `${name}[${i}] after ${ADAM_STEPS} ${opt.name} steps: ${actual[i]} vs torch ${expected[i]}`);
            worst = Math.max(worst, err);
          }
        }
        assert.ok(skipped < 0.2 * total, `${skipped} of ${total} elements have a near-zero gradient: the check would be too weak`);
        t.diagnostic(
          `losses ${losses.map((l) => l.toFixed(5)).join(", ")}; worst parameter relative error ${worst.toExponential(2)}; ${skipped}/${total} near-zero-gradient elements not compared`,
        );
      } finally {
        await runner.close();
      }
    });
  }
}
