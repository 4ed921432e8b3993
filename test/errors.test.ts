import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { after, before, describe, it } from "node:test";
import { DataType } from "@aiaas/sdk/gen";
import { affineModel, gatherModel } from "./support/fixtures.js";
import { codeOf, fp32, readFp32, startHarness, tensor, type Harness } from "./support/harness.js";

describe("bad requests get a precise status and never hurt others", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(
      {
        affine: { model: affineModel(), config: { max_batch_size: 8 } },
        gather: { model: gatherModel(), config: { max_batch_size: 16, max_queue_delay_us: 20000 } },
      },
      { maxMessageBytes: 1024 * 1024 },
    );
  });
  after(() => h.close());

  const x = fp32("x", [1, 4], [1, 2, 3, 4]);
  const cases: Array<[string, () => Parameters<Harness["predict"]>[0], number, RegExp]> = [
    ["unknown model", () => ({ model: "nope", inputs: [x] }), status.NOT_FOUND, /model "nope" not found/],
    ["no model named", () => ({ model: "", inputs: [x] }), status.INVALID_ARGUMENT, /names no model/],
    ["unknown version", () => ({ model: "affine", version: "7", inputs: [x] }), status.NOT_FOUND, /version 7 of model "affine" not found \(serving: 1\)/],
    ["malformed version", () => ({ model: "affine", version: "latest", inputs: [x] }), status.INVALID_ARGUMENT, /not a positive integer/],
    ["wrong datatype", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP64, shape: [1n, 4n], rawData: new Uint8Array(32) })] }), status.INVALID_ARGUMENT, /input "x" is FP64, the model expects FP32/],
    ["no datatype", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_UNSPECIFIED, shape: [1n, 4n] })] }), status.INVALID_ARGUMENT, /no valid datatype/],
    ["wrong rank", () => ({ model: "affine", inputs: [fp32("x", [4], [1, 2, 3, 4])] }), status.INVALID_ARGUMENT, /rank 1, the model expects rank 2/],
    ["wrong dims", () => ({ model: "affine", inputs: [fp32("x", [1, 3], [1, 2, 3])] }), status.INVALID_ARGUMENT, /dimension 1 must be 4/],
    ["negative dim", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [-1n, 4n] })] }), status.INVALID_ARGUMENT, /dimension 0 = -1/],
    ["raw_data shorter than the shape", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [2n, 4n], rawData: new Uint8Array(16) })] }), status.INVALID_ARGUMENT, /holds 16 bytes, its shape \[2, 4\] of FP32 needs 32/],
    ["typed values not matching the shape", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [1n, 4n], fp32Data: [1, 2] })] }), status.INVALID_ARGUMENT, /2 values in fp32_data, its shape \[1, 4\] needs 4/],
    ["typed field of the wrong kind", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [1n, 4n], int64Data: [1n, 2n, 3n, 4n] })] }), status.INVALID_ARGUMENT, /put its elements in fp32_data, not int64_data/],
    ["raw and typed at once", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [1n, 4n], fp32Data: [1, 2, 3, 4], rawData: new Uint8Array(16) })] }), status.INVALID_ARGUMENT, /both raw_data and fp32_data/],
    ["missing input", () => ({ model: "affine", inputs: [] }), status.INVALID_ARGUMENT, /missing input "x"; the model's inputs are x: FP32 \[-1, 4\]/],
    ["extra input", () => ({ model: "affine", inputs: [x, fp32("extra", [1], [1])] }), status.INVALID_ARGUMENT, /unknown input "extra"/],
    ["input given twice", () => ({ model: "affine", inputs: [x, x] }), status.INVALID_ARGUMENT, /given twice/],
    ["zero rows", () => ({ model: "affine", inputs: [fp32("x", [0, 4], [])] }), status.INVALID_ARGUMENT, /has 0 rows/],
    ["more rows than max_batch_size", () => ({ model: "affine", inputs: [fp32("x", [9, 4], new Array(36).fill(0))] }), status.INVALID_ARGUMENT, /9 rows, more than max_batch_size 8/],
    ["an element count that would exhaust memory", () => ({ model: "affine", inputs: [tensor({ name: "x", datatype: DataType.DATA_TYPE_FP32, shape: [2147483647n, 2147483647n] })] }), status.INVALID_ARGUMENT, /more than the 1048576 bytes a request may carry/],
    ["unknown output", () => ({ model: "affine", outputs: ["w"], inputs: [x] }), status.INVALID_ARGUMENT, /unknown output "w"; the model's outputs are y, z/],
    ["float values for an int64 input", () => ({ model: "gather", inputs: [tensor({ name: "ids", datatype: DataType.DATA_TYPE_INT64, shape: [1n, 1n], fp32Data: [1] })] }), status.INVALID_ARGUMENT, /int64_data/],
  ];
  for (const [what, request, code, message] of cases) {
    it(`${what} -> ${status[code]}`, async () => {
      const result = await codeOf(h.predict(request()));
      assert.equal(result.code, code, result.details);
      assert.match(result.details, message);
    });
  }

  it("a message above the size limit -> RESOURCE_EXHAUSTED", async () => {
    const big = fp32("x", [65536 + 1, 4], new Float32Array((65536 + 1) * 4));
    const result = await codeOf(h.predict({ model: "affine", inputs: [big] }));
    assert.equal(result.code, status.RESOURCE_EXHAUSTED, result.details);
    assert.match(result.details, /larger than max/i);
  });

  it("a request whose data fails in ONNX Runtime fails alone; its batch-mates succeed", async () => {
    const ids = (id: bigint) => tensor({ name: "ids", datatype: DataType.DATA_TYPE_INT64, shape: [1n, 1n], rawData: new Uint8Array(new BigInt64Array([id]).buffer) });
    const calls = [0n, 1n, 99n, 3n, 4n].map((id) => h.predict({ model: "gather", inputs: [ids(id)] }));
    const settled = await Promise.allSettled(calls);
    const bad = settled[2];
    assert.equal(bad.status, "rejected");
    assert.equal((bad as PromiseRejectedResult).reason.code, status.INVALID_ARGUMENT);
    for (const i of [0, 1, 3, 4]) {
      const ok = settled[i];
      assert.equal(ok.status, "fulfilled", `request ${i} must not fail with its batch`);
      const expected = [[0, 1], [10, 11], [], [30, 31], [40, 41]][i];
      assert.deepEqual([...readFp32((ok as PromiseFulfilledResult<Awaited<(typeof calls)[0]>>).value.outputs[0])], expected);
    }
  });

  it("keeps serving after all of the above", async () => {
    const res = await h.predict({ model: "affine", inputs: [x], outputs: ["y"] });
    assert.deepEqual([...readFp32(res.outputs[0])], [3, 6, 9, 12]);
  });
});
