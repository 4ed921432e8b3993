// The benchmarks fail a run when the server answered calls with codes no load generator explains: the count
// comes from the server's own /metrics by code (bench/stats.ts requestCodes), which this checks against a
// real server given good calls, a bad one and one past its deadline.
import assert from "node:assert/strict";
import { test } from "node:test";
import { installTelemetry } from "@aiaas/server";
import { requestCodes } from "../bench/stats.js";
import { affineModel, slowModel } from "./support/fixtures.js";
import { codeOf, deadlineIn, fp32, startHarness } from "./support/harness.js";

test("requestCodes: OK and the client's deadline are expected; any other code is reported as unexpected", async () => {
  const h = await startHarness({ affine: { model: affineModel() }, slow: { model: slowModel(), config: { instance_count: 1, max_batch_size: 1 } } }, { http: { port: 0, metrics: installTelemetry({ prometheus: true, env: {} }).metricsHandler } });
  try {
    for (let i = 0; i < 3; i++) await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] });
    assert.equal((await codeOf(h.predict({ model: "affine", inputs: [fp32("x", [1, 3], [1, 2, 3])] }))).code, 3);
    // One call holds the only session; the next waits in the queue past its deadline there.
    const holding = h.predict({ model: "slow", inputs: [fp32("x", [1, 512], new Float32Array(512))] });
    assert.equal((await codeOf(h.predict({ model: "slow", inputs: [fp32("x", [1, 512], new Float32Array(512))] }, deadlineIn(50)))).code, 4);
    await holding;
    let codes = await requestCodes(h.server.httpPort!);
    const late = (): number => (codes.byCode.DEADLINE_EXCEEDED ?? 0) + (codes.byCode.CANCELLED ?? 0);
    for (let i = 0; i < 200 && late() === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      codes = await requestCodes(h.server.httpPort!);
    }
    assert.equal(codes.byCode.OK, 4);
    // The client gives up at its deadline: the server sees it as CANCELLED or DEADLINE_EXCEEDED, whichever comes first.
    assert.equal(late(), 1);
    assert.deepEqual(codes.unexpected, { INVALID_ARGUMENT: 1 });
  } finally {
    await h.close();
  }
});
