// Clients that break the rules on purpose: malformed protobuf, streams cut mid-message, repeated keys,
// trickling and idle connections, too many connections. Each ends promptly with a precise status or close.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as connectHttp2 } from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { credentials, status } from "@grpc/grpc-js";
import { InferenceClient, PredictRequest, type GetModelResponse } from "@aiaas/sdk/gen";
import { ModelInferRequest } from "@aiaas/sdk/gen/inference";
import { KeyStore } from "../server/src/auth/index.js";
import { affineModel, slowModel } from "./support/fixtures.js";
import { fp32, predictRequest, startHarness, unary, type Harness } from "./support/harness.js";
import { frame, rawCall } from "./support/raw-grpc.js";

const predictBytes = (): Uint8Array =>
  PredictRequest.encode(PredictRequest.fromPartial({ model: "affine", id: "ok", inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] })).finish();

/** Resolves when the socket closes, with how long that took and whether the server wrote anything. */
function closed(socket: Socket): Promise<{ ms: number; received: number }> {
  const started = performance.now();
  let received = 0;
  socket.on("data", (d: Buffer) => (received += d.length));
  return new Promise((resolve) => socket.once("close", () => resolve({ ms: performance.now() - started, received })));
}

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.on("error", reject);
  });
}

describe("malformed messages", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } });
  });
  after(() => h.close());

  for (const [name, path, good] of [
    ["PredictStream", "/aiaas.v1.Inference/PredictStream", predictBytes],
    [
      "ModelStreamInfer",
      "/inference.GRPCInferenceService/ModelStreamInfer",
      () => ModelInferRequest.encode(ModelInferRequest.fromPartial({ modelName: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: [1, 2, 3, 4] } }] })).finish(),
    ],
  ] as const) {
    it(`${name}: valid messages, then a protobuf cut mid-field, ends the stream INVALID_ARGUMENT at once, after the valid answers`, async () => {
      const bytes = good();
      const cut = bytes.subarray(0, bytes.length - 7);
      for (const halfClose of [false, true]) {
        const r = await rawCall(h.server.address, path, [...Array(6).fill(frame(bytes)), frame(cut)], { halfClose });
        assert.equal(r.code, status.INVALID_ARGUMENT, `${r.message} (half-close ${halfClose})`);
        assert.match(r.message, /not a valid protobuf message/);
        assert.ok(r.ms < 1000, `ended after ${r.ms} ms`);
        assert.equal(r.messages, 6, "the six valid requests were answered");
      }
    });

    it(`${name}: a length prefix larger than the bytes that follow, then half-close, ends INVALID_ARGUMENT at once`, async () => {
      const bytes = good();
      const r = await rawCall(h.server.address, path, [frame(bytes), frame(bytes), frame(bytes.subarray(0, 20), bytes.length + 100)], { halfClose: true });
      assert.equal(r.code, status.INVALID_ARGUMENT, r.message);
      assert.match(r.message, /half-closed in the middle of a message/);
      assert.ok(r.ms < 1000, `ended after ${r.ms} ms`);
      assert.equal(r.messages, 2);
    });
  }

  it("a unary request that is not valid protobuf is INVALID_ARGUMENT with a short reason, on every service", async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    for (const path of ["/aiaas.v1.Inference/Predict", "/aiaas.v1.Models/GetModel", "/aiaas.v1.Training/GetJob", "/inference.GRPCInferenceService/ModelInfer", "/aiaas.v1.Admin/ListKeys"]) {
      const r = await rawCall(h.server.address, path, [frame(garbage)], { halfClose: true });
      assert.equal(r.code, status.INVALID_ARGUMENT, `${path}: ${r.message}`);
      assert.match(r.message, /not a valid protobuf message \(.{1,120}\)/);
    }
    // The server goes on serving.
    assert.equal((await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] })).model, "affine");
  });

  it("a Train stream whose data chunk is not valid protobuf fails its job INVALID_ARGUMENT", async () => {
    // TrainRequest.spec (field 1) then a data message (field 2) whose length runs past the end.
    const spec = Buffer.from([0x0a, 0x00]);
    const r = await rawCall(h.server.address, "/aiaas.v1.Training/Train", [frame(spec), frame(Buffer.from([0x12, 0x40, 0x01]))], { halfClose: true });
    assert.equal(r.code, status.INVALID_ARGUMENT, r.message);
  });
});

describe("repeated authorization headers", () => {
  let h: Harness;
  let dir: string;
  let token: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-dup-"));
    const store = await KeyStore.open(join(dir, "keys.json"));
    ({ token } = await store.create({ tenant: "alpha", roles: ["predict"] }));
    h = await startHarness({ affine: { model: affineModel() } }, { auth: { keysFile: join(dir, "keys.json"), tenantModelsDir: join(dir, "tenants") } });
    await writeFile(join(dir, "empty"), Buffer.alloc(5));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("two authorization headers are UNAUTHENTICATED, whichever comes first (sent by nghttp: Node's client refuses to)", async (t) => {
    const nghttp = async (...headers: string[]): Promise<{ code: number; message: string }> => {
      const args = ["-d", join(dir, "empty"), "-H", "content-type: application/grpc", "-H", "te: trailers", ...headers.flatMap((x) => ["-H", `authorization: ${x}`])];
      const { stdout } = await promisify(execFile)("nghttp", ["-v", ...args, `http://${h.server.address}/aiaas.v1.Models/ListModels`], { encoding: "utf8" });
      const code = /grpc-status: (\d+)/.exec(stdout)?.[1];
      return { code: Number(code), message: decodeURIComponent(/grpc-message: (.*)/.exec(stdout)?.[1] ?? "") };
    };
    try {
      await promisify(execFile)("nghttp", ["--version"]);
    } catch {
      t.skip("nghttp (Debian nghttp2-client) is not installed; .ci/run installs it");
      return;
    }
    assert.equal((await nghttp(`Bearer ${token}`)).code, status.OK, "one key is fine");
    for (const pair of [[`Bearer ${token}`, `Bearer ${token}`], [`Bearer ${token}`, "Bearer aiaas_0000000000000000_x"], ["Bearer nope", `Bearer ${token}`]]) {
      const r = await nghttp(...pair);
      assert.equal(r.code, status.UNAUTHENTICATED, r.message);
      assert.match(r.message, /send one authorization header/);
    }
  });
});

describe("connection limits", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { maxConnections: 4, handshakeTimeoutMs: 300, idleTimeoutMs: 600 });
  });
  after(() => h.close());

  it("a connection that trickles its handshake is closed at the handshake timeout", async () => {
    const socket = await tcp(h.server.port);
    const done = closed(socket);
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let i = 0;
    const timer = setInterval(() => !socket.destroyed && i < preface.length && socket.write(preface.subarray(i, ++i)), 100);
    const { ms } = await done;
    clearInterval(timer);
    assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`);
  });

  it("a connection that never makes a call gets GOAWAY at the idle timeout", async () => {
    const session = connectHttp2(`http://${h.server.address}`);
    const goaway = new Promise<number>((resolve) => session.once("goaway", () => resolve(performance.now())));
    const started = performance.now();
    await new Promise((resolve) => session.once("connect", resolve));
    const at = await Promise.race([goaway, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))]);
    session.destroy();
    assert.ok(at > 0, "GOAWAY arrived");
    assert.ok(at - started >= 500, `after ${at - started} ms`);
  });

  it("connections beyond --max-connections are closed at once; the server serves again when one goes", async () => {
    const held = await Promise.all(Array.from({ length: 4 }, () => tcp(h.server.port)));
    // Keep them past the handshake check with a real preface and an empty SETTINGS frame.
    for (const s of held) s.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const extra = await tcp(h.server.port);
    const { ms, received } = await closed(extra);
    assert.ok(ms < 500, `the extra connection was closed after ${ms} ms`);
    assert.equal(received, 0);
    held[0].destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [1, 2, 3, 4])] })).model, "affine");
    for (const s of held) s.destroy();
  });
});

describe("a stream whose client does not read", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { maxStreamInflight: 8 });
  });
  after(() => h.close());
  const ran = async (): Promise<number> =>
    Number((await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name: "affine" })).model!.versions[0]!.statistics!.inferenceCount);

  it("is flow-controlled: the server stops taking its requests while its answers go unread, and a reader gets them all", async () => {
    const SENT = 6000;
    const before = await ran();
    const session = connectHttp2(`http://${h.server.address}`);
    session.on("error", () => undefined);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/aiaas.v1.Inference/PredictStream", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      stream.pause();
      const request = frame(predictBytes());
      for (let i = 0; i < SENT; i++) stream.write(request);
      stream.end();
      // Let the server take what it will.
      let taken = -1;
      for (let now = await ran(); now !== taken; now = await ran()) {
        taken = now;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      taken -= before;
      // Bounded by the writer's buffer of answers (1024), the 8 slots, and what HTTP/2's windows hold.
      assert.ok(taken < SENT / 2, `the server ran ${taken} of ${SENT} requests nobody read`);
      assert.ok(taken >= 8, `it did run some: ${taken}`);
      // A client that then reads gets every answer and the stream ends OK.
      let bytes = 0;
      stream.on("data", (d: Buffer) => (bytes += d.length));
      const trailers = new Promise<unknown>((resolve) => stream.on("trailers", (t) => resolve(t["grpc-status"])));
      stream.resume();
      assert.equal(await trailers, "0");
      assert.equal((await ran()) - before, SENT);
      const answer = 5 + bytes / SENT - 5;
      assert.ok(Number.isInteger(answer), "every answer arrived whole");
    } finally {
      session.destroy();
    }
  });

  it("its queued work is dropped when it goes away, and the server keeps serving", async () => {
    // A slow model served one request at a time, so the departed stream's requests are still queued.
    const slow = await startHarness({ slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } } }, { maxStreamInflight: 64 });
    const count = async (): Promise<number> =>
      Number((await unary<{ name: string }, GetModelResponse>(slow.models.getModel.bind(slow.models), { name: "slow" })).model!.versions[0]!.statistics!.inferenceCount);
    try {
      const session = connectHttp2(`http://${slow.server.address}`);
      session.on("error", () => undefined);
      const stream = session.request({ ":method": "POST", ":path": "/aiaas.v1.Inference/PredictStream", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      const request = frame(PredictRequest.encode(PredictRequest.fromPartial({ model: "slow", inputs: [fp32("x", [1, 512], new Float32Array(512).fill(0.1))] })).finish());
      for (let i = 0; i < 64; i++) stream.write(request);
      while ((await count()) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      session.destroy();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const total = await count();
      assert.ok(total < 64, `${total} of the 64 requests ran after their stream went away`);
      const x = fp32("x", [1, 512], new Float32Array(512).fill(0.1));
      assert.equal((await slow.predict({ model: "slow", inputs: [x] })).model, "slow");
    } finally {
      await slow.close();
    }
  });
});

describe("fair shares without tenants", () => {
  it("with auth off, one connection's flood does not make another connection's request wait behind all of it", async () => {
    const h = await startHarness({ slow: { model: slowModel(40), config: { max_batch_size: 4, instance_count: 1 } } });
    // Separate channels: grpc-js would otherwise share one connection between clients of one address.
    const own = { "grpc.use_local_subchannel_pool": 1 };
    const flooder = new InferenceClient(h.server.address, credentials.createInsecure(), own);
    const polite = new InferenceClient(h.server.address, credentials.createInsecure(), own);
    const x = fp32("x", [1, 512], new Float32Array(512).fill(0.1));
    try {
      await unary(polite.predict.bind(polite), predictRequest({ model: "slow", inputs: [x] }));
      let flooded = 0;
      const flood = Array.from({ length: 120 }, () => unary(flooder.predict.bind(flooder), predictRequest({ model: "slow", inputs: [x] })).then(() => flooded++));
      await new Promise((resolve) => setTimeout(resolve, 30));
      await unary(polite.predict.bind(polite), predictRequest({ model: "slow", inputs: [x] }));
      const before = flooded;
      await Promise.all(flood);
      assert.ok(before <= 24, `the polite request waited for ${before} of the flood's 120 requests`);
    } finally {
      flooder.close();
      polite.close();
      await h.close();
    }
  });
});
