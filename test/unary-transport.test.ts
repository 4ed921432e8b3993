// Unary calls are served on their HTTP/2 streams directly (server/src/rpc/unary-call.ts), not through grpc-js's
// call machinery: every way a unary call can go wrong gets its precise status, and the reply is what grpc-js
// would send. A request cut mid-message answers INVALID_ARGUMENT here where grpc-js answers UNIMPLEMENTED, so
// these tests also fail if the routing in front of grpc-js (unary-routes.ts) stops taking the calls.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { installTelemetry } from "@aiaas/server";
import { PredictRequest, PredictResponse, type GetModelResponse } from "@aiaas/sdk/gen";
import { affineModel, slowModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, unary, type Harness } from "./support/harness.js";
import { frame, rawCall } from "./support/raw-grpc.js";
import { requestCodes } from "../bench/stats.js";

const PREDICT = "/aiaas.v1.Inference/Predict";
const predictBytes = (model = "affine"): Uint8Array =>
  PredictRequest.encode(PredictRequest.fromPartial({ model, id: "raw", inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] })).finish();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The affine model's answer to x = [1, 2, 3, 4]: 2x + [1, 2, 3, 4]. */
function assertAffineAnswer(payload: Buffer | undefined): void {
  assert.ok(payload, "a reply message came");
  const response = PredictResponse.decode(payload);
  assert.deepEqual([...readFp32(response.outputs[0]!)], [3, 6, 9, 12]);
}

describe("unary calls on the lean transport", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { maxMessageBytes: 64 << 10 });
  });
  after(() => h.close());

  it("answers with grpc-js's headers, one message and OK trailers", async () => {
    const r = await rawCall(h.server.address, PREDICT, [frame(predictBytes())], { halfClose: true });
    assert.equal(r.code, status.OK, r.message);
    assert.equal(r.headers["content-type"], "application/grpc+proto");
    assert.equal(r.headers["grpc-encoding"], "identity");
    assert.equal(r.trailers?.["grpc-message"], "OK");
    assert.equal(r.messages, 1);
    assertAffineAnswer(r.payloads[0]);
  });

  it("a request cut mid-message is INVALID_ARGUMENT at once, for every unary method", async () => {
    const bytes = predictBytes();
    for (const path of [PREDICT, "/aiaas.v1.Models/GetModel", "/inference.GRPCInferenceService/ModelInfer"]) {
      const r = await rawCall(h.server.address, path, [frame(bytes.subarray(0, 20), bytes.length + 100)], { halfClose: true });
      assert.equal(r.code, status.INVALID_ARGUMENT, `${path}: ${r.message}`);
      assert.match(r.message, /ended in the middle of a message/);
      assert.ok(r.ms < 1000, `ended after ${r.ms} ms`);
    }
    // A prefix cut short (3 of its 5 bytes) is cut mid-message too.
    const r = await rawCall(h.server.address, PREDICT, [Buffer.from([0, 0, 0])], { halfClose: true });
    assert.equal(r.code, status.INVALID_ARGUMENT, r.message);
  });

  it("two messages, or none, on a unary call are UNIMPLEMENTED", async () => {
    const two = await rawCall(h.server.address, PREDICT, [frame(predictBytes()), frame(predictBytes())], { halfClose: true });
    assert.equal(two.code, status.UNIMPLEMENTED, two.message);
    assert.match(two.message, /second request message/);
    const none = await rawCall(h.server.address, PREDICT, [], { halfClose: true });
    assert.equal(none.code, status.UNIMPLEMENTED, none.message);
    assert.match(none.message, /no request message/);
  });

  it("a message over the limit is RESOURCE_EXHAUSTED as soon as its prefix says so", async () => {
    // The prefix promises 1 MiB over a 64 KiB limit; the client never sends the rest nor half-closes.
    const r = await rawCall(h.server.address, PREDICT, [frame(Buffer.alloc(100), 1 << 20)], { limitMs: 2000 });
    assert.equal(r.code, status.RESOURCE_EXHAUSTED, r.message);
    assert.match(r.message, /larger than max \(1048576 vs\. 65536\)/);
    assert.ok(r.ms < 1000, `ended after ${r.ms} ms`);
  });

  it("reads gzip and deflate requests; an unknown encoding, bytes that do not inflate and a bomb past the limit each get their status", async () => {
    const bytes = predictBytes();
    for (const [encoding, packed] of [["gzip", gzipSync(bytes)], ["deflate", deflateSync(bytes)]] as const) {
      const r = await rawCall(h.server.address, PREDICT, [frame(packed, packed.length, 1)], { halfClose: true, headers: { "grpc-encoding": encoding } });
      assert.equal(r.code, status.OK, `${encoding}: ${r.message}`);
      assertAffineAnswer(r.payloads[0]);
    }
    const unknown = await rawCall(h.server.address, PREDICT, [frame(bytes, bytes.length, 1)], { halfClose: true, headers: { "grpc-encoding": "snappy" } });
    assert.equal(unknown.code, status.UNIMPLEMENTED, unknown.message);
    const corrupt = await rawCall(h.server.address, PREDICT, [frame(bytes, bytes.length, 1)], { halfClose: true, headers: { "grpc-encoding": "gzip" } });
    // The client's bytes: INVALID_ARGUMENT (grpc-js says INTERNAL).
    assert.equal(corrupt.code, status.INVALID_ARGUMENT, corrupt.message);
    assert.equal(corrupt.message, "Failed to decompress message");
    const bomb = gzipSync(Buffer.alloc(1 << 20));
    const big = await rawCall(h.server.address, PREDICT, [frame(bomb, bomb.length, 1)], { halfClose: true, headers: { "grpc-encoding": "gzip" } });
    assert.equal(big.code, status.RESOURCE_EXHAUSTED, big.message);
    // The server goes on serving.
    assertAffineAnswer((await rawCall(h.server.address, PREDICT, [frame(bytes)], { halfClose: true })).payloads[0]);
  });

  it("a grpc-timeout that does not parse is INTERNAL; one longer than a timer can wait is no deadline", async () => {
    const r = await rawCall(h.server.address, PREDICT, [frame(predictBytes())], { halfClose: true, headers: { "grpc-timeout": "soon" } });
    assert.equal(r.code, status.INTERNAL, r.message);
    assert.match(r.message, /Invalid grpc-timeout value "soon"/);
    // 597 hours, just over 2^31 ms: grpc-js's 32-bit arithmetic makes it negative and fails the call at once.
    const far = await rawCall(h.server.address, PREDICT, [frame(predictBytes())], { halfClose: true, headers: { "grpc-timeout": "597H" } });
    assert.equal(far.code, status.OK, far.message);
    assertAffineAnswer(far.payloads[0]);
  });
});

describe("unary calls that outlive their client, their deadline or the idle timeout", () => {
  let h: Harness;
  let runMs = 0;
  const slowBytes = (): Uint8Array => PredictRequest.encode(PredictRequest.fromPartial({ model: "slow", inputs: [fp32("x", [1, 512], new Float32Array(512).fill(0.1))] })).finish();
  const count = async (): Promise<number> =>
    Number((await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name: "slow" })).model!.versions[0]!.statistics!.inferenceCount);

  before(async () => {
    h = await startHarness(
      { slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } } },
      { idleTimeoutMs: 300, http: { port: 0, metrics: installTelemetry({ prometheus: true, env: {} }).metricsHandler } },
    );
    const started = performance.now();
    const r = await rawCall(h.server.address, PREDICT, [frame(slowBytes())], { halfClose: true, limitMs: 20_000 });
    assert.equal(r.code, status.OK, r.message);
    runMs = performance.now() - started;
  });
  after(() => h.close());

  it("a deadline that passes while the request waits is DEADLINE_EXCEEDED when it passes", async () => {
    const deadlineMs = Math.max(50, Math.round(runMs / 2));
    // One call holds the only session; the next waits in the queue past its deadline there.
    const holding = rawCall(h.server.address, PREDICT, [frame(slowBytes())], { halfClose: true, limitMs: 20_000 });
    await sleep(10);
    const r = await rawCall(h.server.address, PREDICT, [frame(slowBytes())], { halfClose: true, headers: { "grpc-timeout": `${deadlineMs}m` }, limitMs: 20_000 });
    assert.equal(r.code, status.DEADLINE_EXCEEDED, r.message);
    assert.ok(r.ms >= deadlineMs - 5 && r.ms < deadlineMs + runMs, `ended after ${r.ms} ms (deadline ${deadlineMs} ms, a run ${runMs} ms)`);
    // The server's own count says why the call ended: its deadline, not a client's cancel.
    let codes = await requestCodes(h.server.httpPort!);
    for (let i = 0; i < 100 && !codes.byCode.DEADLINE_EXCEEDED && !codes.byCode.CANCELLED; i++) {
      await sleep(20);
      codes = await requestCodes(h.server.httpPort!);
    }
    assert.equal(codes.byCode.DEADLINE_EXCEEDED, 1, JSON.stringify(codes.byCode));
    assert.equal(codes.byCode.CANCELLED, undefined, JSON.stringify(codes.byCode));
    assert.equal((await holding).code, status.OK);
  });

  it("calls whose client went away are dropped from the queue", async () => {
    const before = await count();
    const calls = Array.from({ length: 6 }, () => rawCall(h.server.address, PREDICT, [frame(slowBytes())], { halfClose: true, cancelAfterMs: 30, limitMs: 20_000 }));
    await Promise.all(calls);
    // Every call was reset after 30 ms; one may have been running by then. Wait for the queue to settle.
    let last = -1;
    for (let now = await count(); now !== last; now = await count()) {
      last = now;
      await sleep(Math.max(200, runMs * 1.5));
    }
    assert.ok(last - before <= 2, `${last - before} of the 6 cancelled calls ran`);
  });

  it("a connection busy with a unary call longer than the idle timeout stays open", async () => {
    // Calls in a row on one connection, one run at a time: the last waits well past the 300 ms idle timeout.
    const calls = Math.min(20, Math.ceil(900 / runMs) + 1);
    const { connect } = await import("node:http2");
    const session = connect(`http://${h.server.address}`);
    session.on("error", () => undefined);
    let goaway = false;
    session.on("goaway", () => (goaway = true));
    try {
      const codes = await Promise.all(
        Array.from({ length: calls }, () => {
          const stream = session.request({ ":method": "POST", ":path": PREDICT, "content-type": "application/grpc", te: "trailers" });
          stream.on("error", () => undefined);
          stream.resume();
          stream.end(frame(slowBytes()));
          return new Promise<number>((resolve) => {
            stream.on("trailers", (t) => resolve(Number(t["grpc-status"])));
            stream.on("close", () => resolve(-1));
          });
        }),
      );
      assert.deepEqual(codes, Array(calls).fill(0), `${calls} calls of ${runMs} ms each on one connection (GOAWAY: ${goaway})`);
      assert.equal(goaway, false, "no GOAWAY while calls were open");
    } finally {
      session.destroy();
    }
  });
});
