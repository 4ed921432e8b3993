// The idle path: a small model's requests that reach an idle process run on the main thread (no worker round
// trip); as soon as any batch of any model is in flight, batches go to the workers. Real server, real ONNX
// Runtime on both paths.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ModelState, type GetModelResponse } from "@aiaas/sdk/gen";
import type { LoadedVersion } from "@aiaas/server";
import { buildMnistCnn, seededImage as image, slowModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, unary, type Harness } from "./support/harness.js";
import { openInlineSession } from "../server/src/runtime/index.js";
import { encodeModel } from "../server/src/training/onnx/index.js";


describe("the inline lane of an idle server", () => {
  let h: Harness;
  const version = (name: string): LoadedVersion => h.server.registry.resolve(name, "");
  const logits = async (model: string, seed: number): Promise<Float32Array> => {
    const res = await h.predict({ model, inputs: [fp32("image", [1, 1, 28, 28], image(seed))], outputs: ["logits"] });
    return readFp32(res.outputs[0]!);
  };

  before(async () => {
    h = await startHarness({
      cnn: { model: buildMnistCnn() },
      "cnn-workers": { model: buildMnistCnn(), config: { inline_run_budget_us: 0 } },
      "cnn-tight": { model: buildMnistCnn(), config: { inline_run_budget_us: 1 } },
      // ~100 ms a run: far over any budget, so always on a worker.
      slow: { model: slowModel(12), config: { instance_count: 1, max_batch_size: 1 } },
      "bad-budget": { model: buildMnistCnn(), config: { inline_run_budget_us: -5 } },
    });
  });
  after(() => h.close());

  it("runs requests made one at a time on the main thread, with the answers the workers give", async () => {
    const lane = version("cnn").batcher.stats;
    const workers = version("cnn-workers").batcher.stats;
    // The load-time probe ran beside the other models' warm-ups and may have come out slow; one run (on a
    // worker, if so) corrects the estimate.
    await logits("cnn", 0);
    const inlineBefore = lane.inlineBatchCount;
    const batchesBefore = lane.batchCount;
    for (let seed = 1; seed <= 12; seed++) {
      const [got, want] = [await logits("cnn", seed), await logits("cnn-workers", seed)];
      assert.equal(got.length, 10);
      for (let k = 0; k < 10; k++) assert.ok(Math.abs(got[k]! - want[k]!) < 1e-5, `image ${seed} logit ${k}: ${got[k]} inline, ${want[k]} on a worker`);
    }
    assert.equal(lane.batchCount - batchesBefore, 12);
    assert.equal(lane.inlineBatchCount - inlineBefore, 12, "each request of an idle server ran on the main thread");
    assert.equal(workers.inlineBatchCount, 0, "inline_run_budget_us 0 keeps every run on the workers");
    const wire = await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name: "cnn" });
    assert.equal(Number(wire.model!.versions[0]!.statistics!.inlineBatchCount), lane.inlineBatchCount, "GetModel counts the inline batches");
  });

  it("keeps a model whose run exceeds the budget on the workers", async () => {
    for (let seed = 1; seed <= 4; seed++) await logits("cnn-tight", seed);
    const stats = version("cnn-tight").batcher.stats;
    assert.equal(stats.batchCount, 4);
    assert.equal(stats.inlineBatchCount, 0);
  });

  it("sends every batch to the workers while another model's batch is in flight, and goes inline again after", async () => {
    const stats = version("cnn").batcher.stats;
    const x = new Float32Array(512).fill(1);
    const slow = h.predict({ model: "slow", inputs: [fp32("x", [1, 512], x)] });
    const slowStats = version("slow").batcher.stats;
    while (slowStats.batchCount === 0 && version("slow").batcher.running === 0) await new Promise((resolve) => setImmediate(resolve));
    const inlineBefore = stats.inlineBatchCount;
    const batchesBefore = stats.batchCount;
    let during = 0;
    while (version("slow").batcher.running > 0) {
      await logits("cnn", during + 100);
      during++;
    }
    await slow;
    assert.ok(during > 0, "requests ran while the slow batch was in flight");
    // The last request may have finished after the slow batch did; every one before it ran on a worker.
    assert.ok(stats.inlineBatchCount - inlineBefore <= 1, `${stats.inlineBatchCount - inlineBefore} of ${during} ran inline beside a running batch`);
    assert.equal(stats.batchCount - batchesBefore, during);
    assert.equal(slowStats.inlineBatchCount, 0, "a model slower than its budget never runs on the main thread");
    const afterSlow = stats.inlineBatchCount;
    await logits("cnn", 1);
    assert.equal(stats.inlineBatchCount, afterSlow + 1, "an idle process runs inline again");
  });

  it("under concurrent load the workers take batches, and every answer matches", async () => {
    const stats = version("cnn").batcher.stats;
    const before = { batches: stats.batchCount, inline: stats.inlineBatchCount };
    const want = await Promise.all(Array.from({ length: 64 }, (_, i) => logits("cnn-workers", 200 + i)));
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => logits("cnn", 200 + i)));
    got.forEach((g, i) => g.forEach((v, k) => assert.ok(Math.abs(v - want[i]![k]!) < 1e-4, `image ${i} logit ${k}`)));
    const batches = stats.batchCount - before.batches;
    const inline = stats.inlineBatchCount - before.inline;
    assert.ok(batches - inline >= 1, `of ${batches} batches, ${inline} inline: the workers took some`);
  });

  it("refuses a budget that is not a whole number of µs, naming the key", async () => {
    const res = await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name: "bad-budget" });
    assert.equal(res.model!.state, ModelState.MODEL_STATE_FAILED);
    assert.match(res.model!.reason, /"inline_run_budget_us" must be an integer from 0 to 100000, got -5/);
  });
});

describe("the main-thread probe", () => {
  it("times the run alone, not what else the main thread does before it (another version loading)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-probe-"));
    let busy = true;
    try {
      await writeFile(join(dir, "cnn.onnx"), encodeModel(buildMnistCnn()));
      const options = { providers: ["cpu"], cudaDeviceId: 0, intraOpThreads: 1, graphOptimizationLevel: "all", allowSpinning: false } as const;
      // Every turn of the event loop, 8 ms of synchronous work (as a Worker spawned or a model file parsed
      // for another version would take) before the probe's run gets its turn.
      const hog = (): void => {
        if (!busy) return;
        const until = performance.now() + 8;
        while (performance.now() < until);
        setImmediate(hog);
      };
      setImmediate(hog);
      const cnn = await openInlineSession(join(dir, "cnn.onnx"), options, [{ name: "image", type: "float32", dims: [1, 1, 28, 28] }]);
      busy = false;
      try {
        assert.ok(cnn.probeRunUs < 4000, `the probe measured ${Math.round(cnn.probeRunUs)} µs`);
      } finally {
        await cnn.close();
      }
    } finally {
      busy = false;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("answers a run before the event loop turns (onnxruntime-node's native run, without its setImmediate)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-probe-"));
    try {
      await writeFile(join(dir, "cnn.onnx"), encodeModel(buildMnistCnn()));
      const options = { providers: ["cpu"], cudaDeviceId: 0, intraOpThreads: 1, graphOptimizationLevel: "all", allowSpinning: false } as const;
      const cnn = await openInlineSession(join(dir, "cnn.onnx"), options, [{ name: "image", type: "float32", dims: [1, 1, 28, 28] }]);
      try {
        const image = Float32Array.from({ length: 784 }, (_, i) => (i % 7) / 7);
        let turned = false;
        setImmediate(() => (turned = true));
        const result = await cnn.run([{ name: "image", type: "float32", dims: [1, 1, 28, 28], buffer: image.buffer, byteOffset: 0, byteLength: image.byteLength }], ["logits"]);
        assert.equal(turned, false, "the answer came a turn of the event loop later");
        assert.deepEqual(result.outputs.map((o) => [o.name, [...o.dims]]), [["logits", [1, 10]]]);
        for (const name of ["nope", "toString"]) {
          await assert.rejects(
            cnn.run([{ name: "image", type: "float32", dims: [1, 1, 28, 28], buffer: image.buffer, byteOffset: 0, byteLength: image.byteLength }], [name]),
            new RegExp(`no output named "${name}"`),
          );
        }
      } finally {
        await cnn.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("times a small model's run alone, not a slow model's probe opened beside it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-probe-"));
    try {
      await writeFile(join(dir, "slow.onnx"), encodeModel(slowModel(12)));
      await writeFile(join(dir, "cnn.onnx"), encodeModel(buildMnistCnn()));
      const options = { providers: ["cpu"], cudaDeviceId: 0, intraOpThreads: 1, graphOptimizationLevel: "all", allowSpinning: false } as const;
      const [slow, cnn] = await Promise.all([
        openInlineSession(join(dir, "slow.onnx"), options, [{ name: "x", type: "float32", dims: [1, 512] }]),
        openInlineSession(join(dir, "cnn.onnx"), options, [{ name: "image", type: "float32", dims: [1, 1, 28, 28] }]),
      ]);
      try {
        // Interleaved, each of the cnn's timed runs would hold one of the slow model's (measured: 9,153 µs against 9,139).
        assert.ok(cnn.probeRunUs * 5 < slow.probeRunUs, `cnn ${Math.round(cnn.probeRunUs)} µs, slow ${Math.round(slow.probeRunUs)} µs`);
      } finally {
        await Promise.all([slow.close(), cnn.close()]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
