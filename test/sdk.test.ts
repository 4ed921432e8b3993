import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { AiaasError, Code, Tensor, createClient, type AiaasClient, type StreamResult } from "@aiaas/sdk";
import { startServer } from "@aiaas/server";
import { affineModel, gatherModel, intScaleModel, slowModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";

describe("@aiaas/sdk against a real server", () => {
  let h: Harness;
  let client: AiaasClient;
  before(async () => {
    h = await startHarness({
      affine: { model: affineModel() },
      "int-scale": { model: intScaleModel() },
      gather: { model: gatherModel() },
      slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } },
    });
    client = createClient({ address: h.server.address });
  });
  after(async () => {
    client.close();
    await h.close();
  });

  it("predicts with typed tensors and reads typed arrays back", async () => {
    const result = await client.predict<"y" | "z">("affine", { x: Tensor.float32([2, 4], [1, 1, 1, 1, 0, 0, 0, 0]) });
    assert.equal(result.version, "1");
    assert.ok(result.outputs.y.data instanceof Float32Array);
    assert.deepEqual(result.outputs.y.shape, [2, 4]);
    assert.deepEqual([...result.outputs.y.data], [3, 4, 5, 6, 1, 2, 3, 4]);
    const ints = await client.predict("int-scale", { x: Tensor.int64([1, 3], [1, 2n, -3]) });
    assert.ok(ints.outputs.y.data instanceof BigInt64Array);
    assert.deepEqual([...(ints.outputs.y.data as BigInt64Array)], [3n, 6n, -9n]);
  });

  it("keeps the caller's typed array (no copy) and checks the element count before sending", () => {
    const pixels = new Float32Array(8);
    assert.equal(Tensor.float32([2, 4], pixels).data, pixels);
    assert.throws(() => Tensor.float32([3, 4], pixels), (e: unknown) => e instanceof AiaasError && e.code === Code.INVALID_ARGUMENT && /needs 12 elements, got 8/.test(e.message));
  });

  it("turns server statuses into AiaasError, instanceof across copies of the package", async () => {
    const error = await client.predict("nope", { x: Tensor.float32([1, 4], [0, 0, 0, 0]) }).catch((e: unknown) => e);
    assert.ok(error instanceof AiaasError);
    assert.equal((error as AiaasError).code, Code.NOT_FOUND);
    assert.match((error as AiaasError).details, /model "nope" not found/);
    // A second copy of the module (another URL) makes its own class; instanceof still holds.
    const url = new URL("../sdk/dist/errors.js?copy=2", import.meta.url).href;
    const copy = (await import(url)) as typeof import("@aiaas/sdk");
    assert.notEqual(copy.AiaasError, AiaasError);
    assert.ok(error instanceof copy.AiaasError);
    assert.ok(new copy.AiaasError(Code.INTERNAL, "x") instanceof AiaasError);
    assert.equal(AiaasError.from(new Error("boom")).code, Code.UNKNOWN);
  });

  it("carries overlapping calls, each with its own result, deadline and cancellation", async () => {
    const calls = Array.from({ length: 64 }, (_, i) => client.predict("affine", { x: Tensor.float32([1, 4], [i, i, i, i]) }, { outputs: ["z"] }));
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.deepEqual([...r.outputs.z.data], [2 * i, 2 * i, 2 * i, 2 * i]));

    const row = (v: number) => ({ x: Tensor.float32([1, 512], new Float32Array(512).fill(v)) });
    const blocker = client.predict("slow", row(1));
    const hurried = client.predict("slow", row(2), { timeoutMs: 20 });
    const controller = new AbortController();
    const cancelled = client.predict("slow", row(3), { signal: controller.signal });
    const patient = client.predict("slow", row(4));
    setTimeout(() => controller.abort(), 5);
    const settled = await Promise.allSettled([blocker, hurried, cancelled, patient]);
    assert.equal(settled[0].status, "fulfilled");
    assert.equal(((settled[1] as PromiseRejectedResult).reason as AiaasError).code, Code.DEADLINE_EXCEEDED);
    assert.equal(((settled[2] as PromiseRejectedResult).reason as AiaasError).code, Code.CANCELLED);
    assert.equal(settled[3].status, "fulfilled");
    assert.equal((settled[3] as PromiseFulfilledResult<{ outputs: Record<string, Tensor> }>).value.outputs.y.data[0], 4);
  });

  it("streams: send() and iterate, with a per-request error and the stream going on", async () => {
    const stream = client.predictStream();
    const ids = [0, 1, 2, 3].map((i) => stream.send({ model: "gather", inputs: { ids: Tensor.int64([1, 1], [i === 2 ? 99 : i]) } }));
    stream.end();
    const results: StreamResult[] = [];
    for await (const result of stream) results.push(result);
    assert.equal(results.length, 4);
    const byId = new Map(results.map((r) => [r.id, r]));
    const bad = byId.get(ids[2])!;
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.error.code, Code.INVALID_ARGUMENT);
    const ok = byId.get(ids[3])!;
    assert.ok(ok.ok && ok.outputs.y.data instanceof Float32Array);
    assert.deepEqual(ok.ok && [...ok.outputs.y.data], [30, 31]);
  });

  it("streams from an AsyncIterable of requests", async () => {
    async function* requests() {
      for (let i = 0; i < 20; i++) yield { id: `q${i}`, model: "affine", outputs: ["z"], inputs: { x: Tensor.float32([1, 4], [i, 0, 0, 0]) } };
    }
    const seen = new Map<string, number>();
    for await (const r of client.predictStream(requests())) {
      assert.ok(r.ok);
      if (r.ok) seen.set(r.id, (r.outputs.z.data as Float32Array)[0]);
    }
    assert.equal(seen.size, 20);
    assert.equal(seen.get("q7"), 14);
  });

  it("cancels a stream by AbortSignal", async () => {
    const controller = new AbortController();
    const stream = client.predictStream({ signal: controller.signal });
    stream.send({ model: "slow", inputs: { x: Tensor.float32([1, 512], new Float32Array(512)) } });
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(async () => {
      for await (const _ of stream) void _;
    }, (e: unknown) => e instanceof AiaasError && e.code === Code.CANCELLED);
  });

  it("lists, describes, unloads and loads models", async () => {
    const list = await client.models.list();
    assert.deepEqual(list.map((m) => m.name).sort(), ["affine", "gather", "int-scale", "slow"]);
    const affine = await client.models.get("affine");
    assert.equal(affine.state, "ready");
    assert.deepEqual(affine.versions[0].inputs, [{ name: "x", type: "float32", shape: [-1, 4] }]);
    assert.ok(affine.versions[0].statistics!.successCount > 0);
    assert.equal((await client.models.unload("int-scale")).state, "unloaded");
    await assert.rejects(client.predict("int-scale", { x: Tensor.int64([1, 3], [1, 2, 3]) }), (e: AiaasError) => e.code === Code.FAILED_PRECONDITION);
    assert.equal((await client.models.load("int-scale")).state, "ready");
    await assert.rejects(client.models.get("missing"), (e: AiaasError) => e.code === Code.NOT_FOUND);
  });
});

describe("@aiaas/sdk connection handling", () => {
  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });

  it("retries UNAVAILABLE with backoff until the server is up", async () => {
    const h = await startHarness({ affine: { model: affineModel() } });
    const port = await freePort();
    const client = createClient({ address: `127.0.0.1:${port}`, retry: { maxAttempts: 40, initialBackoffMs: 100, maxBackoffMs: 400 } });
    const call = client.predict("affine", { x: Tensor.float32([1, 4], [0, 0, 0, 0]) }, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const late = await startServer({ modelsDir: h.root, host: "127.0.0.1", port, providers: ["cpu"], logger: pino({ level: "silent" }) });
    const result = await call;
    assert.deepEqual([...result.outputs.y.data], [1, 2, 3, 4]);
    client.close();
    await late.shutdown();
    await h.close();
    const never = createClient({ address: `127.0.0.1:${await freePort()}`, retry: { maxAttempts: 2, initialBackoffMs: 10 } });
    await assert.rejects(never.models.list({ timeoutMs: 2000 }), (e: AiaasError) => e.code === Code.UNAVAILABLE);
    never.close();
  });

  it("sends calls made one at a time over one shared stream, which closes on its own soon after the last", async () => {
    // The server's debug line per call (method and status, logged when the call ends) tells which RPCs ran.
    const calls: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void calls.push((JSON.parse(line) as { method?: string }).method ?? "") });
    const single = await startHarness({ affine: { model: affineModel() } }, { logger });
    const alone = createClient({ address: single.server.address });
    for (let i = 0; i < 10; i++) {
      const result = await alone.predict("affine", { x: Tensor.float32([1, 4], [i, i, i, i]) }, { outputs: ["z"] });
      assert.deepEqual([...result.outputs.z.data], [2 * i, 2 * i, 2 * i, 2 * i]);
    }
    // Not closed: the stream ends by itself once the client is quiet (it would otherwise hold the process).
    const ended = performance.now();
    while (!calls.includes("PredictStream") && performance.now() - ended < 3_000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(calls.filter((m) => m === "Predict" || m === "PredictStream"), ["PredictStream"], "ten calls, one stream that ended");
    alone.close();
    await single.close();
  });

  it("sends a call of 1 MiB of tensors or more alone (unary), not on the shared stream", async () => {
    const calls: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void calls.push((JSON.parse(line) as { method?: string }).method ?? "") });
    const single = await startHarness({ affine: { model: affineModel(), config: { max_batch_size: 65_536 } } }, { logger });
    const client = createClient({ address: single.server.address });
    const rows = 65_536; // 1 MiB of float32
    const big = client.predict("affine", { x: Tensor.float32([rows, 4], new Float32Array(rows * 4).fill(1)) }, { outputs: ["z"] });
    const small = client.predict("affine", { x: Tensor.float32([1, 4], [1, 1, 1, 1]) }, { outputs: ["z"] });
    const [b, s] = await Promise.all([big, small]);
    assert.equal(b.outputs.z.data.length, rows * 4);
    assert.equal(b.outputs.z.data[rows * 4 - 1], 2);
    assert.deepEqual([...s.outputs.z.data], [2, 2, 2, 2]);
    client.close();
    await single.close();
    assert.deepEqual(calls.filter((m) => m === "Predict" || m === "PredictStream").sort(), ["Predict", "PredictStream"]);
  });

  it("lets a script that never calls close() exit once its call has answered", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-sdk-exit-"));
    const script = join(dir, "one-call.mjs");
    const sdk = new URL("../sdk/dist/index.js", import.meta.url).href;
    await writeFile(
      script,
      `import { createClient, Tensor } from ${JSON.stringify(sdk)};\n` +
        `const client = createClient({ address: process.argv[2] });\n` +
        `const r = await client.predict("affine", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });\n` +
        `console.log(JSON.stringify([...r.outputs.y.data]));\n`,
    );
    const server = await startHarness({ affine: { model: affineModel() } });
    const child = spawn(process.execPath, [script, server.server.address], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    let answeredAt = 0;
    child.stdout.once("data", () => (answeredAt = performance.now()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const lingered = performance.now() - answeredAt;
    await server.close();
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, "the script exited by itself");
    assert.equal(out.trim(), "[3,6,9,12]");
    // The idle close is 100 ms; a stream kept open would hold the process for as long as it stays open.
    assert.ok(lingered < 3_000, `the process lived ${lingered.toFixed(0)} ms after its answer`);
  });

  it("balances calls over several addresses with round_robin", async () => {
    const a = await startHarness({ affine: { model: affineModel() } });
    const b = await startHarness({ affine: { model: affineModel() } });
    const client = createClient({ addresses: [a.server.address, b.server.address] });
    for (let i = 0; i < 20; i++) await client.predict("affine", { x: Tensor.float32([1, 4], [0, 0, 0, 0]) });
    const served = async (h: Harness) => {
      const single = createClient({ address: h.server.address });
      const info = await single.models.get("affine");
      single.close();
      return info.versions[0].statistics!.successCount;
    };
    const [na, nb] = [await served(a), await served(b)];
    assert.equal(na + nb, 20);
    assert.ok(na >= 5 && nb >= 5, `round robin spread 20 calls as ${na} + ${nb}`);
    client.close();
    await a.close();
    await b.close();
  });
});
