import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { GetModelResponse, PredictResponse } from "@aiaas/sdk/gen";
import { buildMnistCnn, seqSumModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, unary, type Harness } from "./support/harness.js";
import { seededRandom } from "../scripts/seeded-random.js";

function images(count: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length: 784 }, () => random()));
}

describe("dynamic batching", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      cnn: { model: buildMnistCnn(), config: { max_batch_size: 64 } },
      "seq-sum": { model: seqSumModel(), config: { max_batch_size: 32, max_queue_delay_us: 2000 } },
      // The same CNN, never batched: the reference.
      "cnn-solo": { model: buildMnistCnn(), config: { max_batch_size: 0, inputs: { image: { shape: [1, 1, 28, 28] } } } },
    });
  });
  after(() => h.close());

  const stats = async (name: string) => {
    const res = await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name });
    return res.model!.versions[0].statistics!;
  };

  it("forms batches larger than one under concurrency, and every result equals the unbatched one", async () => {
    const inputs = images(96, 1);
    const reference: Float32Array[] = [];
    for (const image of inputs) {
      const res = await h.predict({ model: "cnn-solo", inputs: [fp32("image", [1, 1, 28, 28], image)], outputs: ["logits"] });
      reference.push(readFp32(res.outputs[0]));
    }
    const before = await stats("cnn");
    const results = await Promise.all(
      inputs.map((image, i) => h.predict({ model: "cnn", id: String(i), inputs: [fp32("image", [1, 1, 28, 28], image)], outputs: ["logits"] })),
    );
    const after = await stats("cnn");
    const batches = Number(after.batchCount - before.batchCount);
    const rows = Number(after.inferenceCount - before.inferenceCount);
    assert.equal(rows, 96);
    assert.ok(batches < 96, `96 concurrent requests ran in ${batches} batches: some batch must hold more than one`);
    results.forEach((res: PredictResponse, i) => {
      assert.equal(res.id, String(i));
      const got = readFp32(res.outputs[0]);
      assert.equal(got.length, 10);
      for (let k = 0; k < 10; k++) assert.ok(Math.abs(got[k] - reference[i][k]) < 1e-4, `image ${i} logit ${k}: ${got[k]} vs ${reference[i][k]}`);
    });
  });

  it("gives each multi-row request its own rows back", async () => {
    const inputs = images(20, 2);
    const requests = [3, 1, 5, 2, 4, 5].map((rows, r) => {
      const start = [0, 3, 4, 9, 11, 15][r];
      const data = new Float32Array(rows * 784);
      for (let i = 0; i < rows; i++) data.set(inputs[start + i], i * 784);
      return { rows, start, data };
    });
    const solo = await Promise.all(inputs.map((image) => h.predict({ model: "cnn-solo", inputs: [fp32("image", [1, 1, 28, 28], image)], outputs: ["logits"] })));
    const results = await Promise.all(requests.map((r) => h.predict({ model: "cnn", inputs: [fp32("image", [r.rows, 1, 28, 28], r.data)], outputs: ["logits"] })));
    results.forEach((res, r) => {
      assert.deepEqual(res.outputs[0].shape, [BigInt(requests[r].rows), 10n]);
      const got = readFp32(res.outputs[0]);
      for (let i = 0; i < requests[r].rows; i++) {
        const want = readFp32(solo[requests[r].start + i].outputs[0]);
        for (let k = 0; k < 10; k++) assert.ok(Math.abs(got[i * 10 + k] - want[k]) < 1e-4);
      }
    });
  });

  it("batches only requests with equal non-batch dimensions", async () => {
    const before = await stats("seq-sum");
    const lengths = [3, 5, 3, 7, 5, 3, 7, 7, 3, 5, 5, 3];
    const results = await Promise.all(
      lengths.map((len, i) => h.predict({ model: "seq-sum", inputs: [fp32("x", [1, len], Array.from({ length: len }, (_, j) => i + j))] })),
    );
    results.forEach((res, i) => {
      const len = lengths[i];
      const want = Array.from({ length: len }, (_, j) => i + j).reduce((a, b) => a + b, 0);
      assert.deepEqual([...readFp32(res.outputs[0])], [want]);
    });
    const after = await stats("seq-sum");
    const batches = Number(after.batchCount - before.batchCount);
    assert.ok(batches >= 3, "three distinct lengths cannot share one batch");
    assert.ok(batches < lengths.length, `12 requests over 3 lengths with a 2 ms window ran in ${batches} batches`);
  });
});
