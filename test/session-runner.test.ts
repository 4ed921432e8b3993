// The two ways a serving session runs: on onnxruntime-node's native binding (at once, on the calling thread)
// and through its public API (the fallback when the binding is not the shape the server knows, and what
// AIAAS_ORT_NATIVE_RUN=0 asks for). Both must describe every model alike and answer alike, in a session worker
// and on the main thread; and a whole server kept on the public API still serves, idle path included.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import type { LoadedVersion } from "@aiaas/server";
import { affineModel, buildMnistCnn, halfModel, intScaleModel, notModel, seededImage as image } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, type Harness } from "./support/harness.js";
import { seededRandom } from "../scripts/seeded-random.js";
import { createSessionInstance, openInlineSession, transferTensor, type InlineSession, type RunResult, type RuntimeOptions, type TransferTensor, type ValueSpec } from "../server/src/runtime/index.js";
import { encodeModel } from "../server/src/training/onnx/index.js";

const RUNTIME: RuntimeOptions = { providers: ["cpu"], cudaDeviceId: 0, intraOpThreads: 1, graphOptimizationLevel: "all", allowSpinning: false };

/** Runs `open` with the session API chosen: the native binding, or the public API alone. */
async function withApi<T>(api: "native" | "public", open: () => Promise<T>): Promise<T> {
  const before = process.env.AIAAS_ORT_NATIVE_RUN;
  if (api === "public") process.env.AIAAS_ORT_NATIVE_RUN = "0";
  else delete process.env.AIAAS_ORT_NATIVE_RUN;
  try {
    return await open();
  } finally {
    if (before === undefined) delete process.env.AIAAS_ORT_NATIVE_RUN;
    else process.env.AIAAS_ORT_NATIVE_RUN = before;
  }
}

/** Two rows of each input, filled from a seed in the input's own type (variable dimensions as 2). */
function feedsFor(inputs: readonly ValueSpec[], seed: number): TransferTensor[] {
  const random = seededRandom(seed);
  return inputs.map((spec) => {
    const dims = spec.dims.map((d) => (d < 0 ? 2 : d));
    const n = dims.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: n }, () => random());
    const data =
      spec.type === "int64" ? BigInt64Array.from(values, (v) => BigInt(Math.round((v - 0.5) * 1e6)))
      : spec.type === "bool" ? Uint8Array.from(values, (v) => (v < 0.5 ? 1 : 0))
      // float16 bits of 1.0, 1.5, 2.0, 2.5 (0x3c00, 0x3e00, 0x4000, 0x4100)
      : spec.type === "float16" ? Uint16Array.from(values, (v) => [0x3c00, 0x3e00, 0x4000, 0x4100][Math.floor(v * 4)]!)
      : Float32Array.from(values, (v) => v * 2 - 1);
    return transferTensor(spec.name, spec.type as TransferTensor["type"], dims, data);
  });
}

/** Each output as [name, type, dims, values]: what two runs must agree on, exactly (same kernels, one thread). */
function outputsOf(result: RunResult): unknown[] {
  return result.outputs.map((t) => {
    const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    return [t.name, t.type, [...t.dims], Buffer.from(bytes).toString("hex")];
  });
}

describe("the native binding and the public API", () => {
  let dir: string;
  const models = { cnn: buildMnistCnn(), affine: affineModel(), "int-scale": intScaleModel(), not: notModel(), half: halfModel() };
  const paths: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-runner-"));
    for (const [name, model] of Object.entries(models)) {
      paths[name] = join(dir, `${name}.onnx`);
      await writeFile(paths[name]!, encodeModel(model));
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("describe each model alike and give the same outputs, in a session worker and on the main thread", async () => {
    for (const name of Object.keys(models)) {
      const path = paths[name]!;
      const native = await withApi("native", () => createSessionInstance({ modelPath: path, warmup: false, ...RUNTIME }));
      const fallback = await withApi("public", () => createSessionInstance({ modelPath: path, warmup: false, ...RUNTIME }));
      const inlineNative = await withApi("native", () => openInlineSession(path, RUNTIME, native.inputs));
      const inlinePublic = await withApi("public", () => openInlineSession(path, RUNTIME, native.inputs));
      try {
        assert.equal(native.nativeRun, true, `${name}: the pinned onnxruntime-node's binding has the shape the server knows`);
        assert.equal(fallback.nativeRun, false, `${name}: AIAAS_ORT_NATIVE_RUN=0 keeps the worker on the public API`);
        assert.equal(inlineNative.nativeRun, true);
        assert.equal(inlinePublic.nativeRun, false);
        assert.deepEqual(fallback.inputs, native.inputs, `${name}: inputs described alike`);
        assert.deepEqual(fallback.outputs, native.outputs, `${name}: outputs described alike`);
        for (const seed of [1, 2]) {
          const want = outputsOf(await native.run(feedsFor(native.inputs, seed), []));
          assert.deepEqual(outputsOf(await fallback.run(feedsFor(native.inputs, seed), [])), want, `${name}, seed ${seed}: worker on the public API`);
          assert.deepEqual(outputsOf(await inlineNative.run(feedsFor(native.inputs, seed), [])), want, `${name}, seed ${seed}: main thread, native`);
          assert.deepEqual(outputsOf(await inlinePublic.run(feedsFor(native.inputs, seed), [])), want, `${name}, seed ${seed}: main thread, public API`);
        }
        // One output asked for by name: only it comes back, on every path; a name the model lacks is refused.
        const last = native.outputs[native.outputs.length - 1]!.name;
        for (const session of [native, fallback, inlineNative, inlinePublic]) {
          const one = await session.run(feedsFor(native.inputs, 3), [last]);
          assert.deepEqual(one.outputs.map((t) => t.name), [last]);
          await assert.rejects(async () => session.run(feedsFor(native.inputs, 3), ["nope"]));
        }
      } finally {
        await Promise.all([native.close(), fallback.close(), inlineNative.close(), inlinePublic.close()]);
      }
    }
  });
});

/** The seed CNN's logits for a seeded image, from a session run directly. */
async function logitsOf(session: InlineSession, seed: number): Promise<Float32Array> {
  const result = await session.run([transferTensor("image", "float32", [1, 1, 28, 28], image(seed))], ["logits"]);
  const logits = result.outputs[0]!;
  return new Float32Array(logits.buffer, logits.byteOffset, 10);
}

describe("a server kept on onnxruntime-node's public API (AIAAS_ORT_NATIVE_RUN=0)", () => {
  let h: Harness;
  const lines: string[] = [];

  before(async () => {
    const log = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    h = await withApi("public", () => startHarness({ cnn: { model: buildMnistCnn() } }, { logger: pino({ level: "info" }, log) }));
  });
  after(() => h.close());

  it("says so when the model loads, and serves on the workers and on the main thread with the native answers", async () => {
    assert.ok(lines.some((l) => l.includes("cnn:1 runs on CPU through onnxruntime-node's public API")), `the load log names the public API:\n${lines.join("")}`);
    const direct = await withApi("native", () => openInlineSession(join(h.root, "cnn", "1", "model.onnx"), RUNTIME, [{ name: "image", type: "float32", dims: [1, 1, 28, 28] }]));
    const version: LoadedVersion = h.server.registry.resolve("cnn", "");
    const stats = version.batcher.stats;
    try {
      await h.predict({ model: "cnn", inputs: [fp32("image", [1, 1, 28, 28], image(0))] });
      const inlineBefore = stats.inlineBatchCount;
      for (let seed = 1; seed <= 4; seed++) {
        const served = readFp32((await h.predict({ model: "cnn", inputs: [fp32("image", [1, 1, 28, 28], image(seed))], outputs: ["logits"] })).outputs[0]!);
        assert.deepEqual([...served], [...(await logitsOf(direct, seed))], `image ${seed}`);
      }
      assert.equal(stats.inlineBatchCount - inlineBefore, 4, "an idle server's requests ran on the main thread, through the public API's run");
      // 32 at once: batches on the workers.
      const batchesBefore = stats.batchCount;
      const inlineBeforeBurst = stats.inlineBatchCount;
      const burst = await Promise.all(Array.from({ length: 32 }, (_, i) => h.predict({ model: "cnn", inputs: [fp32("image", [1, 1, 28, 28], image(100 + i))], outputs: ["logits"] })));
      assert.equal(burst.length, 32);
      assert.ok(stats.batchCount - batchesBefore - (stats.inlineBatchCount - inlineBeforeBurst) >= 1, "some of the burst ran on a worker");
      for (const [i, res] of burst.entries()) {
        const got = readFp32(res.outputs[0]!);
        const ref = await logitsOf(direct, 100 + i);
        for (let k = 0; k < 10; k++) assert.ok(Math.abs(got[k]! - ref[k]!) < 1e-5, `burst ${i} logit ${k}: ${got[k]} against ${ref[k]}`);
      }
    } finally {
      await direct.close();
    }
  });
});
