// Bidirectional calls (PredictStream, ModelStreamInfer, Train) are served on their HTTP/2 streams directly
// (server/src/rpc/stream-call.ts), not through grpc-js's call machinery. These tests speak gRPC by hand, so
// they reach what no client library sends: a message in pieces, a prefix that lies, compressed bytes that do
// not inflate, a client that sends on after the status. Some answers differ from grpc-js's on purpose (a
// client's bytes that do not inflate are INVALID_ARGUMENT, not INTERNAL; a deadline is counted as
// DEADLINE_EXCEEDED, not CANCELLED), so these tests also fail if the routing stops taking the streams.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { installTelemetry } from "@aiaas/server";
import { PredictRequest, PredictStreamResponse } from "@aiaas/sdk/gen";
import { MessageFrames } from "@aiaas/sdk/wire";
import { affineModel, slowModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, type Harness } from "./support/harness.js";
import { frame, rawCall, type RawResult } from "./support/raw-grpc.js";

const STREAM = "/aiaas.v1.Inference/PredictStream";
const request = (id: string, model = "affine"): Uint8Array =>
  PredictRequest.encode(PredictRequest.fromPartial({ model, id, inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] })).finish();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** PredictStream calls ended, by status code, from the server's RPC counter. */
async function streamCodes(httpPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const codes: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("aiaas_rpc_count_total{") || !line.includes(`method="PredictStream"`)) continue;
    const code = /[{,]code="([A-Z_]+)"/.exec(line)![1]!;
    codes[code] = (codes[code] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return codes;
}

/** The ids of the answers, each checked to be the affine model's answer to [1, 2, 3, 4]. */
function answeredIds(r: RawResult): string[] {
  return r.payloads.map((payload) => {
    const result = PredictStreamResponse.decode(payload).result;
    assert.equal(result?.$case, "response", result?.$case === "error" ? result.value.message : "no result");
    assert.deepEqual([...readFp32(result.value.outputs[0]!)], [3, 6, 9, 12]);
    return result.value.id;
  });
}

describe("MessageFrames", () => {
  const messages = [Buffer.from("first message"), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from("z")];
  const bytes = Buffer.concat(messages.map((m, i) => frame(m, m.length, i === 2 ? 1 : 0)));

  it("cuts the same messages out of the bytes however they are split", () => {
    for (let a = 0; a <= bytes.length; a++) {
      for (const b of [a, a + 1, a + 3, Math.floor((a + bytes.length) / 2), bytes.length]) {
        if (b < a || b > bytes.length) continue;
        const got: [boolean, string][] = [];
        const frames = new MessageFrames(-1, (compressed, payload) => got.push([compressed, payload.toString("hex")]));
        for (const piece of [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]) assert.equal(frames.read(piece), -1);
        assert.deepEqual(got, messages.map((m, i) => [i === 2, m.toString("hex")]), `split at ${a} and ${b}`);
        assert.equal(frames.midMessage, false);
      }
    }
  });

  it("knows a message is cut, and refuses one over the limit from its prefix alone", () => {
    const frames = new MessageFrames(100, () => assert.fail("no message is whole"));
    assert.equal(frames.read(bytes.subarray(0, 7)), -1);
    assert.equal(frames.midMessage, true);
    const limited = new MessageFrames(100, () => undefined);
    assert.equal(limited.read(frame(Buffer.alloc(10), 1 << 20).subarray(0, 5)), 1 << 20);
  });
});

describe("bidirectional calls on the lean stream transport", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(
      { affine: { model: affineModel() } },
      { maxMessageBytes: 64 << 10, http: { port: 0, metrics: installTelemetry({ prometheus: true, env: {} }).metricsHandler } },
    );
  });
  after(() => h.close());

  it("answers every request of one write, with grpc-js's headers and OK trailers; an empty stream ends OK", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `r${i}`);
    const r = await rawCall(h.server.address, STREAM, [Buffer.concat(ids.map((id) => frame(request(id))))], { halfClose: true });
    assert.equal(r.code, status.OK, r.message);
    assert.equal(r.headers["content-type"], "application/grpc+proto");
    assert.equal(r.trailers?.["grpc-message"], "OK");
    assert.deepEqual(answeredIds(r).sort(), [...ids].sort());
    const empty = await rawCall(h.server.address, STREAM, [], { halfClose: true });
    assert.equal(empty.code, status.OK, empty.message);
    assert.equal(empty.messages, 0);
  });

  it("reads a message that comes a few bytes at a time", async () => {
    const whole = frame(request("pieces"));
    const pieces = Array.from({ length: Math.ceil(whole.length / 7) }, (_, i) => whole.subarray(i * 7, i * 7 + 7));
    const r = await rawCall(h.server.address, STREAM, [...pieces, frame(request("after"))], { halfClose: true, gapMs: 2 });
    assert.equal(r.code, status.OK, r.message);
    assert.deepEqual(answeredIds(r).sort(), ["after", "pieces"]);
  });

  it("a half-close mid-message is INVALID_ARGUMENT, after the answers to the requests before it", async () => {
    const cut = frame(request("cut")).subarray(0, 12);
    const r = await rawCall(h.server.address, STREAM, [frame(request("whole")), cut], { halfClose: true });
    assert.equal(r.code, status.INVALID_ARGUMENT, r.message);
    assert.match(r.message, /half-closed in the middle of a message/);
    assert.deepEqual(answeredIds(r), ["whole"]);
  });

  it("a message over the limit is RESOURCE_EXHAUSTED from its prefix, without waiting for its bytes", async () => {
    const r = await rawCall(h.server.address, STREAM, [frame(request("before")), frame(Buffer.alloc(100), 1 << 20)], { limitMs: 3000 });
    assert.equal(r.code, status.RESOURCE_EXHAUSTED, r.message);
    assert.match(r.message, /larger than max \(1048576 vs\. 65536\)/);
    assert.ok(r.ms < 2000, `ended after ${r.ms} ms`);
    assert.deepEqual(answeredIds(r), ["before"]);
  });

  it("reads gzip and deflate messages; bytes that do not inflate, or a compressed message the headers do not announce, are INVALID_ARGUMENT", async () => {
    for (const [encoding, pack] of [["gzip", gzipSync], ["deflate", deflateSync]] as const) {
      const packed = pack(request(encoding));
      // A compressed message between two plain ones: the answers keep the stream's order of reading.
      const r = await rawCall(h.server.address, STREAM, [frame(request("plain")), frame(packed, packed.length, 1), frame(request("last"))], {
        halfClose: true,
        headers: { "grpc-encoding": encoding },
      });
      assert.equal(r.code, status.OK, `${encoding}: ${r.message}`);
      assert.deepEqual(answeredIds(r).sort(), [encoding, "last", "plain"].sort());
    }
    const bytes = request("x");
    const corrupt = await rawCall(h.server.address, STREAM, [frame(bytes, bytes.length, 1)], { halfClose: true, headers: { "grpc-encoding": "gzip" } });
    assert.equal(corrupt.code, status.INVALID_ARGUMENT, corrupt.message);
    assert.equal(corrupt.message, "Failed to decompress message");
    const unannounced = await rawCall(h.server.address, STREAM, [frame(bytes, bytes.length, 1)], { halfClose: true });
    assert.equal(unannounced.code, status.INVALID_ARGUMENT, unannounced.message);
    const unknown = await rawCall(h.server.address, STREAM, [frame(bytes, bytes.length, 1)], { halfClose: true, headers: { "grpc-encoding": "snappy" } });
    assert.equal(unknown.code, status.UNIMPLEMENTED, unknown.message);
  });

  it("a client that sends on after its stream failed gets the status, and the server serves on", async () => {
    const flood = Array.from({ length: 3000 }, (_, i) => frame(request(`late${i}`)));
    const r = await rawCall(h.server.address, STREAM, [frame(Buffer.from([0xff, 0xff, 0xff])), ...flood], { halfClose: true, limitMs: 5000 });
    assert.equal(r.code, status.INVALID_ARGUMENT, r.message);
    assert.match(r.message, /not a valid protobuf message/);
    const next = await rawCall(h.server.address, STREAM, [frame(request("next"))], { halfClose: true });
    assert.deepEqual(answeredIds(next), ["next"]);
  });

  it("a grpc-timeout that does not parse ends the stream INTERNAL at once, before any request runs", async () => {
    const r = await rawCall(h.server.address, STREAM, [frame(request("never"))], { headers: { "grpc-timeout": "soon" }, limitMs: 3000 });
    assert.equal(r.code, status.INTERNAL, r.message);
    assert.match(r.message, /Invalid grpc-timeout value "soon"/);
    assert.equal(r.messages, 0);
  });

  it("a stream's deadline ends it DEADLINE_EXCEEDED when it passes, and the server counts it so", async () => {
    const before = await streamCodes(h.server.httpPort!);
    const r = await rawCall(h.server.address, STREAM, [frame(request("in time"))], { headers: { "grpc-timeout": "300m" }, limitMs: 5000 });
    assert.equal(r.code, status.DEADLINE_EXCEEDED, r.message);
    assert.ok(r.ms >= 290 && r.ms < 3000, `ended after ${r.ms} ms`);
    assert.deepEqual(answeredIds(r), ["in time"]);
    let codes = await streamCodes(h.server.httpPort!);
    for (let i = 0; i < 50 && Object.values(codes).reduce((a, b) => a + b, 0) === Object.values(before).reduce((a, b) => a + b, 0); i++) {
      await sleep(20);
      codes = await streamCodes(h.server.httpPort!);
    }
    assert.equal((codes.DEADLINE_EXCEEDED ?? 0) - (before.DEADLINE_EXCEEDED ?? 0), 1, JSON.stringify(codes));
    assert.equal(codes.CANCELLED ?? 0, before.CANCELLED ?? 0, JSON.stringify(codes));
  });
});

describe("a stream that outlives the idle timeout", () => {
  it("keeps its connection while it is open", async () => {
    const h = await startHarness({ affine: { model: affineModel() }, slow: { model: slowModel() } }, { idleTimeoutMs: 300 });
    try {
      // Ten requests 100 ms apart: the stream is open three times the idle timeout.
      const r = await rawCall(h.server.address, STREAM, Array.from({ length: 10 }, (_, i) => frame(request(`t${i}`))), { halfClose: true, gapMs: 100, limitMs: 10_000 });
      assert.equal(r.code, status.OK, r.message);
      assert.equal(r.messages, 10);
      assert.equal(r.goaway, false, "no GOAWAY while the stream was open");
    } finally {
      await h.close();
    }
  });
});
