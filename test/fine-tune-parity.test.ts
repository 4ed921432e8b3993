// Fine-tuning PyTorch exports through the Train RPC against PyTorch training the same modules from the same
// weights, on the same data in the same batch order (the server's seeded per-epoch permutation): held-out
// accuracy within 0.5 points and held-out loss within 1% after every epoch. PyTorch's runs are committed in
// test/fixtures/torch-finetune (scripts/torch-finetune-reference.ts, python3-torch).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createClient, Tensor, type TrainChunk, type TrainEvent } from "@aiaas/sdk";
import { FINE_TUNE, FINE_TUNE_INPUTS, fineTuneTask, type Split } from "../scripts/finetune-data.js";
import { startHarness } from "./support/harness.js";

interface TorchRun {
  readonly initial_test_loss: number;
  readonly epochs: readonly { epoch: number; test_loss: number; test_accuracy: number }[];
}

const tensorOf = (x: Float32Array | BigInt64Array, dims: readonly number[], from: number, to: number): Tensor => {
  const size = dims.reduce((a, b) => a * b, 1);
  return x instanceof BigInt64Array ? Tensor.int64([to - from, ...dims], x.slice(from * size, to * size)) : Tensor.float32([to - from, ...dims], x.slice(from * size, to * size));
};

/** Rows in arrival order (the permutation indexes them so), then the held-out rows as validation chunks. */
function* chunks(dims: readonly number[], train: Split, heldOut: Split): Generator<TrainChunk> {
  for (let s = 0; s < train.count; s += 200) yield { inputs: { input: tensorOf(train.x, dims, s, s + 200) }, labels: Tensor.int64([200], train.y.slice(s, s + 200)) };
  for (let s = 0; s < heldOut.count; s += 300) {
    yield { inputs: { input: tensorOf(heldOut.x, dims, s, s + 300) }, labels: Tensor.int64([300], heldOut.y.slice(s, s + 300)), validation: true };
  }
}

/** Mean cross-entropy of logits [n, classes] against labels. */
function crossEntropy(logits: Float32Array, labels: BigInt64Array): number {
  const classes = logits.length / labels.length;
  let total = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) + max;
    total += logSum - row[Number(labels[n])]!;
  }
  return total / labels.length;
}

for (const name of Object.keys(FINE_TUNE_INPUTS)) {
  test(`fine-tuning the torch export "${name}" through the Train RPC tracks PyTorch's held-out accuracy and loss epoch by epoch`, async (t) => {
    const torch = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "torch-finetune", `${name}.json`), "utf8")) as TorchRun;
    const task = fineTuneTask(name);
    const model = readFileSync(join(import.meta.dirname, "fixtures", "torch-export", `${name}.onnx`));
    const h = await startHarness({ [name]: { model: new Uint8Array(model), config: { version_policy: { all: true }, max_batch_size: 1024 } } });
    const client = createClient({ address: h.server.address });
    try {
      // Both sides start from the same weights: the served export's held-out loss is PyTorch's before training.
      const before = await client.predict(name, { input: tensorOf(task.heldOut.x, task.dims, 0, task.heldOut.count) }, { version: "1" });
      const initial = crossEntropy(before.outputs.logits!.data as Float32Array, task.heldOut.y);
      assert.ok(Math.abs(initial - torch.initial_test_loss) < 1e-4 * torch.initial_test_loss, `initial held-out loss ${initial} vs torch ${torch.initial_test_loss}`);
      const events: TrainEvent[] = [];
      const spec = { model: name, baseModel: { name }, epochs: FINE_TUNE.epochs, batchSize: FINE_TUNE.batchSize, seed: FINE_TUNE.seed, optimizer: { type: "adam" as const, learningRate: FINE_TUNE.learningRate } };
      for await (const e of client.train(spec, chunks(task.dims, task.train, task.heldOut))) events.push(e);
      const validations = events.filter((e): e is Extract<TrainEvent, { type: "validation" }> => e.type === "validation");
      assert.equal(validations.length, FINE_TUNE.epochs);
      const lines: string[] = [];
      for (const v of validations) {
        const ref = torch.epochs[v.epoch - 1]!;
        assert.equal(v.rows, task.heldOut.count);
        assert.ok(Math.abs(v.accuracy - ref.test_accuracy) <= 0.005 + 1e-9, `epoch ${v.epoch}: held-out accuracy ${v.accuracy} vs torch ${ref.test_accuracy}`);
        assert.ok(Math.abs(v.loss - ref.test_loss) <= 0.01 * ref.test_loss, `epoch ${v.epoch}: held-out loss ${v.loss} vs torch ${ref.test_loss}`);
        lines.push(`epoch ${v.epoch}: accuracy ${(v.accuracy * 100).toFixed(2)}% (torch ${(ref.test_accuracy * 100).toFixed(2)}%), loss ${v.loss.toFixed(5)} (torch ${ref.test_loss.toFixed(5)})`);
      }
      assert.ok(events.some((e) => e.type === "completed"));
      t.diagnostic(lines.join("; "));
    } finally {
      client.close();
      await h.close();
    }
  });
}
