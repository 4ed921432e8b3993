// The SDK's own HTTP/2 transport under predict(): what a grpc-js channel did for it before (statuses of peers
// that are not gRPC servers, a server going away, a peer that vanished without a word) it must do too.
import assert from "node:assert/strict";
import { createServer as createHttp2Server, constants, type Http2Server } from "node:http2";
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { AiaasError, Code, Tensor, createClient } from "@aiaas/sdk";
import { startServer } from "@aiaas/server";
import { affineModel, slowModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";

const x = (): Record<string, Tensor> => ({ x: Tensor.float32([1, 4], [1, 2, 3, 4]) });

async function listen(server: Http2Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the SDK's HTTP/2 transport against peers that are not aiaas", () => {
  let peer: Http2Server;
  let address: string;
  let opened = 0;
  const unanswered: Array<{ timeout: string; reset: Promise<number> }> = [];
  before(async () => {
    // Answers like a proxy or a broken server would, by path of the test's choosing (the model's name).
    peer = createHttp2Server();
    peer.on("stream", (stream, headers) => {
      opened++;
      stream.on("error", () => undefined);
      if (headers[":path"] === "/aiaas.v1.Models/ListModels") {
        // Never answers: the client's deadline or signal ends the call.
        unanswered.push({ timeout: String(headers["grpc-timeout"]), reset: new Promise((resolve) => stream.on("close", () => resolve(stream.rstCode))) });
        return;
      }
      stream.once("data", (chunk: Buffer) => {
        const text = chunk.toString("latin1");
        if (text.includes("http-404")) stream.respond({ ":status": 404, "content-type": "text/html" }, { endStream: true });
        else if (text.includes("http-503")) stream.respond({ ":status": 503 }, { endStream: true });
        else if (text.includes("trailers-only")) {
          stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "8", "grpc-message": encodeURIComponent("quota: 0 % left") }, { endStream: true });
        } else if (text.includes("refused")) stream.close(constants.NGHTTP2_REFUSED_STREAM);
        else if (text.includes("garbage")) {
          stream.respond({ ":status": 200, "content-type": "application/grpc" });
          stream.end(Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
        }
      });
    });
    address = await listen(peer);
  });
  after(() => new Promise<void>((resolve) => peer.close(() => resolve())));

  const failure = async (model: string, maxAttempts = 1): Promise<AiaasError> => {
    const client = createClient({ address, retry: { maxAttempts, initialBackoffMs: 5, maxBackoffMs: 10 } });
    try {
      const error = await client.predict(model, x(), { timeoutMs: 5_000 }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof AiaasError, `${model}: ${String(error)}`);
      return error;
    } finally {
      client.close();
    }
  };

  it("maps HTTP statuses, a trailers-only status, a refused stream and an unreadable message to gRPC codes", async () => {
    assert.equal((await failure("http-404")).code, Code.UNIMPLEMENTED);
    assert.equal((await failure("http-503")).code, Code.UNAVAILABLE);
    const quota = await failure("trailers-only");
    assert.equal(quota.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(quota.details, "quota: 0 % left", "grpc-message is percent-decoded");
    assert.equal((await failure("refused")).code, Code.UNAVAILABLE);
    assert.equal((await failure("garbage")).code, Code.INTERNAL);
  });

  it("fails a call made after close() at once, without retrying", async () => {
    const client = createClient({ address, retry: { maxAttempts: 50, initialBackoffMs: 100 } });
    client.close();
    const before = opened;
    const error = await client.predict("anything", x()).catch((e: unknown) => e);
    assert.ok(error instanceof AiaasError && error.code === Code.FAILED_PRECONDITION, String(error));
    assert.equal(opened, before);
  });

  it("sends a unary call's deadline as grpc-timeout, keeps it too, and resets the stream on cancel", async () => {
    const client = createClient({ address });
    const late = await client.models.list({ timeoutMs: 300 }).catch((e: unknown) => e);
    assert.ok(late instanceof AiaasError && late.code === Code.DEADLINE_EXCEEDED, String(late));
    assert.match(unanswered[0]!.timeout, /^\d{3}m$/);
    assert.ok(Number.parseInt(unanswered[0]!.timeout) <= 300);
    assert.equal(await unanswered[0]!.reset, constants.NGHTTP2_CANCEL, "the server is told the call is over");
    const controller = new AbortController();
    const aborted = client.models.list({ signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    const error = await aborted;
    assert.ok(error instanceof AiaasError && error.code === Code.CANCELLED, String(error));
    assert.equal(await unanswered[1]!.reset, constants.NGHTTP2_CANCEL);
    client.close();
  });

  it("retries UNAVAILABLE on a new stream, up to maxAttempts", async () => {
    const before = opened;
    assert.equal((await failure("http-503", 3)).code, Code.UNAVAILABLE);
    assert.equal(opened - before, 3);
  });
});

describe("the SDK's HTTP/2 transport and a server going away", () => {
  it("lets calls in flight finish through a graceful shutdown, then reaches the next server at the address", async () => {
    const h = await startHarness({ slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } }, affine: { model: affineModel() } }, { shutdownGraceMs: 30_000 });
    // Pings every 100 ms: one that falls while the old connection drains must not cut it.
    const client = createClient({ address: h.server.address, retry: { maxAttempts: 30, initialBackoffMs: 50, maxBackoffMs: 200 }, keepalive: { intervalMs: 100, timeoutMs: 5_000 } });
    const row = (v: number) => ({ x: Tensor.float32([1, 512], new Float32Array(512).fill(v)) });
    const inFlight = [1, 2, 3, 4].map((v) => client.predict("slow", row(v), { timeoutMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    // The shared stream may not hold the shutdown into its grace: it ends once its calls are answered.
    await h.server.shutdown();
    const took = performance.now() - started;
    const results = await Promise.all(inFlight);
    results.forEach((r, i) => assert.equal(r.outputs.y.data[0], i + 1));
    assert.ok(took < 25_000, `the shutdown waited ${took.toFixed(0)} ms: the stream was held open into the grace period`);

    const next = await startServer({ modelsDir: h.root, host: "127.0.0.1", port: h.server.port, providers: ["cpu"], logger: pino({ level: "silent" }) });
    assert.deepEqual([...(await client.predict("affine", x())).outputs.y.data], [3, 6, 9, 12]);
    client.close();
    await next.shutdown();
    await h.close();
  });
});

/** A TCP relay whose current connections can be frozen: bytes stop flowing both ways, and nothing closes. */
async function startRelay(target: string): Promise<{ address: string; connections: () => number; freeze(): void; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const pairs: Array<[Socket, Socket]> = [];
  const relay = createTcpServer((client) => {
    const upstream = tcpConnect(port, host);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(relay.address() as AddressInfo).port}`,
    connections: () => pairs.length,
    freeze() {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

describe("the SDK's HTTP/2 transport and a peer that vanished", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel(), config: { max_batch_size: 65_536 } } });
  });
  after(() => h.close());

  it("makes every call of a client on one connection: predictions, a large one, and the models API", async () => {
    const relay = await startRelay(h.server.address);
    const client = createClient({ address: relay.address });
    await Promise.all([client.predict("affine", x()), client.predict("affine", x())]);
    const rows = 65_536; // 1 MiB: a unary call of its own
    const big = await client.predict("affine", { x: Tensor.float32([rows, 4], new Float32Array(rows * 4)) }, { outputs: ["y"] });
    assert.equal(big.outputs.y.data.length, rows * 4);
    assert.deepEqual((await client.models.list()).map((m) => m.name), ["affine"]);
    assert.equal((await client.models.get("affine")).state, "ready");
    await assert.rejects(client.models.get("missing"), (e: AiaasError) => e.code === Code.NOT_FOUND && /missing/.test(e.details));
    assert.equal(relay.connections(), 1);
    client.close();
    await relay.close();
  });

  it("notices by keepalive ping and retries on a new connection, well inside the call's deadline", async () => {
    const relay = await startRelay(h.server.address);
    const client = createClient({ address: relay.address, keepalive: { intervalMs: 200, timeoutMs: 200 } });
    assert.deepEqual([...(await client.predict("affine", x())).outputs.y.data], [3, 6, 9, 12]);
    assert.equal(relay.connections(), 1);
    relay.freeze();
    // Without a ping the call would wait on the dead connection until its deadline.
    const result = await client.predict("affine", x(), { timeoutMs: 8_000 });
    assert.deepEqual([...result.outputs.y.data], [3, 6, 9, 12]);
    assert.equal(relay.connections(), 2, "the call went again on a new connection");
    client.close();
    await relay.close();
  });
});
