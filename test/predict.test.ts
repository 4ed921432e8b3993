import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DataType, TensorEncoding } from "@aiaas/sdk/gen";
import { affineModel, fixedMatmulModel, halfModel, intScaleModel, notModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, tensor, type Harness } from "./support/harness.js";

describe("Predict", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      affine: { model: affineModel(), versions: [1, 2], config: { version_policy: { all: true } } },
      "int-scale": { model: intScaleModel() },
      not: { model: notModel() },
      half: { model: halfModel() },
      "fixed-matmul": { model: fixedMatmulModel() },
    });
  });
  after(() => h.close());

  it("runs a float model from raw_data and echoes model, version and id", async () => {
    const res = await h.predict({ model: "affine", id: "req-1", inputs: [fp32("x", [1, 4], [1, 1, 1, 1])] });
    assert.equal(res.model, "affine");
    assert.equal(res.version, "2", "empty version means the latest ready one");
    assert.equal(res.id, "req-1");
    assert.deepEqual(res.outputs.map((o) => o.name), ["y", "z"]);
    assert.deepEqual([...readFp32(res.outputs[0])], [3, 4, 5, 6]);
    assert.deepEqual(res.outputs[0].shape, [1n, 4n]);
    assert.deepEqual([...readFp32(res.outputs[1])], [2, 2, 2, 2]);
  });

  it("serves a named version and selected outputs", async () => {
    const res = await h.predict({ model: "affine", version: "1", outputs: ["z"], inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] });
    assert.equal(res.version, "1");
    assert.deepEqual(res.outputs.map((o) => o.name), ["z"]);
    assert.deepEqual([...readFp32(res.outputs[0])], [2, 4, 6, 8]);
  });

  it("returns each row of a multi-row request", async () => {
    const res = await h.predict({ model: "affine", inputs: [fp32("x", [3, 4], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])], outputs: ["y"] });
    assert.deepEqual(res.outputs[0].shape, [3n, 4n]);
    assert.deepEqual([...readFp32(res.outputs[0])], [1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8]);
  });

  it("accepts typed JSON-style fields and mirrors them in the reply", async () => {
    const res = await h.predict({
      model: "affine",
      inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [1n, 4n], fp32Data: [0, 1, 2, 3] })],
    });
    assert.equal(res.outputs[0].rawData.length, 0);
    assert.deepEqual(res.outputs[0].fp32Data, [1, 4, 7, 10]);
    const raw = await h.predict({
      model: "affine",
      outputEncoding: TensorEncoding.TENSOR_ENCODING_RAW,
      inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [1n, 4n], fp32Data: [0, 1, 2, 3] })],
    });
    assert.deepEqual([...readFp32(raw.outputs[0])], [1, 4, 7, 10]);
  });

  it("computes on int64, bool and fp16 tensors", async () => {
    const ints = await h.predict({
      model: "int-scale",
      inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_INT64, shape: [1n, 3n], int64Data: [1n, -2n, 9007199254740993n] })],
    });
    assert.deepEqual(ints.outputs[0].int64Data, [3n, -6n, 27021597764222979n], "int64 stays exact beyond 2^53");
    const bools = await h.predict({
      model: "not",
      inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_BOOL, shape: [2n, 2n], boolData: [true, false, false, true] })],
    });
    assert.deepEqual(bools.outputs[0].boolData, [false, true, true, false]);
    const halves = await h.predict({
      model: "half",
      inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP16, shape: [1n, 2n], fp32Data: [1, -2.25] })],
    });
    assert.equal(halves.outputs[0].datatype, DataType.DATA_TYPE_FP16);
    assert.deepEqual(halves.outputs[0].fp32Data, [1.5, -1.75]);
  });

  it("runs a model without a batch dimension", async () => {
    const res = await h.predict({ model: "fixed-matmul", inputs: [fp32("x", [2, 2], [1, 0, 0, 1])] });
    assert.deepEqual([...readFp32(res.outputs[0])], [1, 2, 3, 4]);
    const model = await new Promise<import("@aiaas/sdk/gen").GetModelResponse>((resolve, reject) =>
      h.models.getModel({ name: "fixed-matmul" }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    assert.equal(model.model!.batching!.maxBatchSize, 0);
    assert.deepEqual(model.model!.versions[0].inputs[0].shape, [2n, 2n]);
  });
});
