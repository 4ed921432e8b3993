import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { after, before, describe, it } from "node:test";
import type { PredictStreamResponse } from "@aiaas/sdk/gen";
import { affineModel } from "./support/fixtures.js";
import { fp32, predictRequest, readFp32, startHarness, type Harness } from "./support/harness.js";

/** Collects every response of a stream until it ends. */
function collect(call: ReturnType<Harness["inference"]["predictStream"]>): Promise<PredictStreamResponse[]> {
  const responses: PredictStreamResponse[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (r: PredictStreamResponse) => responses.push(r));
    call.on("end", () => resolve(responses));
    call.on("error", reject);
  });
}

describe("PredictStream", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } });
  });
  after(() => h.close());

  it("answers every request by id; a bad one answers with its error and the stream goes on", async () => {
    const call = h.inference.predictStream();
    const done = collect(call);
    const count = 300;
    for (let i = 0; i < count; i++) {
      const bad = i === 137;
      call.write(predictRequest({ model: "affine", id: `r${i}`, outputs: ["y"], inputs: [fp32("x", bad ? [1, 3] : [1, 4], bad ? [1, 2, 3] : [i, i, i, i])] }));
    }
    call.end();
    const responses = await done;
    assert.equal(responses.length, count);
    const byId = new Map(responses.map((r) => [r.result!.value.id, r]));
    assert.equal(byId.size, count, "every id answered exactly once");
    for (let i = 0; i < count; i++) {
      const r = byId.get(`r${i}`)!.result!;
      if (i === 137) {
        assert.equal(r.$case, "error");
        assert.equal(r.$case === "error" && r.value.code, status.INVALID_ARGUMENT);
        assert.match(r.$case === "error" ? r.value.message : "", /dimension 1 must be 4/);
      } else {
        assert.equal(r.$case, "response");
        if (r.$case === "response") assert.deepEqual([...readFp32(r.value.outputs[0])], [2 * i + 1, 2 * i + 2, 2 * i + 3, 2 * i + 4]);
      }
    }
  });

  it("reports a per-request NOT_FOUND and still serves the next request", async () => {
    const call = h.inference.predictStream();
    const done = collect(call);
    call.write(predictRequest({ model: "missing", id: "a", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] }));
    call.write(predictRequest({ model: "affine", id: "b", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] }));
    call.end();
    const responses = await done;
    const a = responses.find((r) => r.result?.value.id === "a")!.result!;
    const b = responses.find((r) => r.result?.value.id === "b")!.result!;
    assert.equal(a.$case === "error" && a.value.code, status.NOT_FOUND);
    assert.equal(b.$case, "response");
  });
});
