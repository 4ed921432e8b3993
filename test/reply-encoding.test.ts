// The hand-written reply encoders against the generated decoders: every reply the hot path writes must
// decode to exactly the message the generated encoder would have carried.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, PredictResponse, PredictStreamResponse } from "@aiaas/sdk/gen";
import { ModelInferResponse, ModelStreamInferResponse } from "@aiaas/sdk/gen/inference";
import { encodeModelInferResponse, encodePredictResponse, type PredictReply } from "../server/dist/rpc/reply-encoding.js";

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

const replies: Record<string, PredictReply> = {
  "one output": { model: "mnist-cnn", version: "3", id: "req-1", outputs: [{ name: "logits", tensor: { type: "float32", dims: [2, 3], data: new Uint8Array(new Float32Array([1, -2, 3.5, 0, 1e-9, -7]).buffer) } }] },
  "several outputs, no id, unicode names": {
    model: "módel-é",
    version: "12",
    id: "",
    outputs: [
      { name: "probabilités", tensor: { type: "float32", dims: [1, 2], data: new Uint8Array(8).fill(7) } },
      { name: "idx", tensor: { type: "int64", dims: [1], data: new Uint8Array(8).fill(1) } },
      { name: "flag", tensor: { type: "bool", dims: [1], data: bytes(1) } },
    ],
  },
  "a scalar and an empty tensor": {
    model: "m",
    version: "1",
    id: "x".repeat(300),
    outputs: [
      { name: "s", tensor: { type: "float64", dims: [], data: new Uint8Array(8).fill(3) } },
      { name: "empty", tensor: { type: "float32", dims: [0, 4], data: new Uint8Array(0) } },
    ],
  },
  "large dimensions and a long payload": {
    model: "big",
    version: "2147483647",
    id: "id",
    outputs: [{ name: "y", tensor: { type: "uint8", dims: [1, 2 ** 31 - 1, 300, 128, 16384], data: new Uint8Array(200_000).map((_, i) => i % 251) } }],
  },
};

const DATATYPES: Record<string, DataType> = {
  float32: DataType.DATA_TYPE_FP32, float64: DataType.DATA_TYPE_FP64, int64: DataType.DATA_TYPE_INT64, bool: DataType.DATA_TYPE_BOOL, uint8: DataType.DATA_TYPE_UINT8,
};
const TRITON: Record<string, string> = { float32: "FP32", float64: "FP64", int64: "INT64", bool: "BOOL", uint8: "UINT8" };

/** What the generated encoder would have been given for this reply. */
function expectedPredict(reply: PredictReply): PredictResponse {
  return {
    model: reply.model,
    version: reply.version,
    id: reply.id,
    outputs: reply.outputs.map((o) => ({
      name: o.name, datatype: DATATYPES[o.tensor.type]!, shape: o.tensor.dims.map(BigInt), rawData: Uint8Array.from(o.tensor.data),
      fp32Data: [], fp64Data: [], int32Data: [], int64Data: [], uint32Data: [], uint64Data: [], boolData: [],
    })),
  };
}

for (const [name, reply] of Object.entries(replies)) {
  test(`PredictResponse and PredictStreamResponse, ${name}: the generated decoder reads back what was encoded`, () => {
    const datatypes = reply.outputs.map((o) => DATATYPES[o.tensor.type]!);
    const expected = expectedPredict(reply);
    const plain = encodePredictResponse(reply, datatypes);
    assert.deepEqual(PredictResponse.decode(Uint8Array.from(plain)), expected);
    // The same bytes the generated encoder writes (it too leaves out proto3 defaults).
    assert.deepEqual(Uint8Array.from(plain), PredictResponse.encode(expected).finish());
    const wrapped = encodePredictResponse(reply, datatypes, true);
    assert.deepEqual(PredictStreamResponse.decode(Uint8Array.from(wrapped)), { result: { $case: "response", value: expected } });
  });

  test(`ModelInferResponse and ModelStreamInferResponse, ${name}: outputs and raw contents pair by position`, () => {
    const datatypes = reply.outputs.map((o) => TRITON[o.tensor.type]!);
    const expected: ModelInferResponse = {
      modelName: reply.model,
      modelVersion: reply.version,
      id: reply.id,
      parameters: {},
      outputs: reply.outputs.map((o, i) => ({ name: o.name, datatype: datatypes[i]!, shape: o.tensor.dims.map(BigInt), parameters: {}, contents: undefined })),
      rawOutputContents: reply.outputs.map((o) => Uint8Array.from(o.tensor.data)),
    };
    const decoded = ModelInferResponse.decode(encodeModelInferResponse(reply, datatypes));
    assert.deepEqual({ ...decoded, rawOutputContents: decoded.rawOutputContents.map((c) => Uint8Array.from(c)) }, expected);
    const stream = ModelStreamInferResponse.decode(encodeModelInferResponse(reply, datatypes, true));
    assert.equal(stream.errorMessage, "");
    assert.equal(stream.inferResponse?.outputs.length, reply.outputs.length);
    assert.deepEqual(stream.inferResponse?.rawOutputContents.map((c) => c.length), reply.outputs.map((o) => o.tensor.data.length));
  });
}

test("a reply's output views are copied: the encoded bytes do not change when the batch's buffer is reused", () => {
  const batch = new Uint8Array(16).fill(9);
  const reply: PredictReply = { model: "m", version: "1", id: "", outputs: [{ name: "y", tensor: { type: "uint8", dims: [1, 4], data: batch.subarray(4, 8) } }] };
  const encoded = encodePredictResponse(reply, [DataType.DATA_TYPE_UINT8]);
  batch.fill(0);
  assert.deepEqual([...PredictResponse.decode(encoded).outputs[0]!.rawData], [9, 9, 9, 9]);
});
