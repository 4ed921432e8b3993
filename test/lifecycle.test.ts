import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ModelState, type GetModelResponse, type LoadModelResponse, type UnloadModelResponse } from "@aiaas/sdk/gen";
import { affineModel, slowModel } from "./support/fixtures.js";
import { codeOf, deadlineIn, fp32, predictRequest, readFp32, startHarness, unary, type Harness } from "./support/harness.js";

const row = (v: number) => fp32("x", [1, 512], new Float32Array(512).fill(v));

describe("deadlines, cancellation and the queue bound", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      // One session, one row per batch: requests really queue behind each other.
      slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1, max_queue_size: 3 } },
      "slow-timeout": { model: slowModel(), config: { max_batch_size: 1, instance_count: 1, default_timeout_ms: 30 } },
    });
  });
  after(() => h.close());

  const statistics = async (name: string) =>
    (await unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name })).model!.versions[0].statistics!;

  it("fails a request whose deadline passes in the queue and never runs it", async () => {
    const before = await statistics("slow");
    const blockers = [h.predict({ model: "slow", inputs: [row(1)] }), h.predict({ model: "slow", inputs: [row(2)] })];
    const late = await codeOf(h.predict({ model: "slow", inputs: [row(3)] }, deadlineIn(5)));
    assert.equal(late.code, status.DEADLINE_EXCEEDED);
    await Promise.all(blockers);
    const after = await statistics("slow");
    assert.equal(Number(after.inferenceCount - before.inferenceCount), 2, "the expired request never ran");
  });

  it("applies the model's default_timeout_ms when the caller sets no deadline", async () => {
    // The first request runs at once (a running request is not interrupted); the second waits behind it.
    const blocker = h.predict({ model: "slow-timeout", inputs: [row(1)] });
    const late = await codeOf(h.predict({ model: "slow-timeout", inputs: [row(1)] }));
    assert.equal(late.code, status.DEADLINE_EXCEEDED);
    assert.match(late.details, /timeout of 30 ms passed/);
    await blocker;
  });

  it("gives each request on a stream its own timeout_ms", async () => {
    const call = h.inference.predictStream();
    const answers: Array<{ id: string; code: number }> = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (r: import("@aiaas/sdk/gen").PredictStreamResponse) =>
        answers.push({ id: r.result!.value.id, code: r.result!.$case === "error" ? r.result!.value.code : 0 }),
      );
      call.on("end", resolve);
      call.on("error", reject);
    });
    call.write(predictRequest({ model: "slow", id: "first", inputs: [row(1)] }));
    call.write(predictRequest({ model: "slow", id: "hurried", timeoutMs: 5, inputs: [row(2)] }));
    call.write(predictRequest({ model: "slow", id: "patient", timeoutMs: 60_000, inputs: [row(3)] }));
    call.end();
    await done;
    const code = (id: string) => answers.find((a) => a.id === id)!.code;
    assert.equal(code("first"), 0);
    assert.equal(code("hurried"), status.DEADLINE_EXCEEDED);
    assert.equal(code("patient"), 0);
  });

  it("removes a cancelled call from the queue", async () => {
    const before = await statistics("slow");
    const blocker = h.predict({ model: "slow", inputs: [row(1)] });
    const call = h.inference.predict(predictRequest({ model: "slow", inputs: [row(2)] }), () => undefined);
    await new Promise((r) => setTimeout(r, 5));
    call.cancel();
    await blocker;
    await new Promise((r) => setTimeout(r, 50));
    const after = await statistics("slow");
    assert.equal(Number(after.inferenceCount - before.inferenceCount), 1, "the cancelled request never ran");
    assert.equal(Number(after.failureCount - before.failureCount), 1);
  });

  it("answers RESOURCE_EXHAUSTED at once when the queue is full", async () => {
    // Each call's settle time, so "at once" is an order, not a timed threshold: every refusal arrives before
    // the running request (which sleeps) finishes.
    const settledAt: number[] = [];
    const call = (i: number) =>
      h.predict({ model: "slow", inputs: [row(i)] }).finally(() => {
        settledAt[i] = performance.now();
      });
    // The first call runs (the idle session takes it at once; the slow model runs far longer than the 50 ms
    // waited here), then 7 more arrive together: 3 fit the queue, 4 do not.
    const first = call(0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settledAt[0], undefined, "the first call is still running");
    const settled = await Promise.allSettled([first, ...Array.from({ length: 7 }, (_, i) => call(i + 1))]);
    const rejected = settled.flatMap((s, i) => (s.status === "rejected" ? [{ reason: s.reason, at: settledAt[i]! }] : []));
    const fulfilled = settled.flatMap((s, i) => (s.status === "fulfilled" ? [settledAt[i]!] : []));
    assert.equal(rejected.length, 4, `8 calls into 1 running + 3 queued: ${rejected.length} refused`);
    assert.equal(fulfilled.length, 4);
    for (const r of rejected) {
      assert.equal(r.reason.code, status.RESOURCE_EXHAUSTED);
      assert.match(r.reason.details, /queue is full \(3 requests waiting\)/);
    }
    assert.ok(Math.max(...rejected.map((r) => r.at)) < Math.min(...fulfilled), "every refusal came before the first request finished");
  });
});

describe("model lifecycle", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      affine: { model: affineModel() },
      broken: { model: new TextEncoder().encode("this is not an onnx file") },
      misconfigured: { model: affineModel(), config: { max_batch_sise: 8 } },
    });
  });
  after(() => h.close());

  const getModel = (name: string) => unary<{ name: string }, GetModelResponse>(h.models.getModel.bind(h.models), { name });
  const loadModel = (name: string) => unary<{ name: string }, LoadModelResponse>(h.models.loadModel.bind(h.models), { name });
  const unloadModel = (name: string) => unary<{ name: string }, UnloadModelResponse>(h.models.unloadModel.bind(h.models), { name });

  it("marks a corrupt model FAILED with the reason and serves the others", async () => {
    const broken = (await getModel("broken")).model!;
    assert.equal(broken.state, ModelState.MODEL_STATE_FAILED);
    // ONNX Runtime's own words, with the file named within the repository (no server path).
    assert.equal(broken.versions[0].reason, "Load model from broken/1/model.onnx failed:Protobuf parsing failed.");
    const err = await codeOf(h.predict({ model: "broken", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] }));
    assert.equal(err.code, status.FAILED_PRECONDITION);
    const ok = await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])], outputs: ["y"] });
    assert.deepEqual([...readFp32(ok.outputs[0])], [1, 2, 3, 4]);
  });

  it("names the bad key of a config.json", async () => {
    const model = (await getModel("misconfigured")).model!;
    assert.equal(model.state, ModelState.MODEL_STATE_FAILED);
    assert.match(model.reason, /unknown key "max_batch_sise"/);
  });

  it("unloads and loads at run time", async () => {
    await unloadModel("affine");
    assert.equal((await getModel("affine")).model!.state, ModelState.MODEL_STATE_UNLOADED);
    const err = await codeOf(h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] }));
    assert.equal(err.code, status.FAILED_PRECONDITION);
    assert.match(err.details, /not loaded/);
    const loaded = await loadModel("affine");
    assert.equal(loaded.model!.state, ModelState.MODEL_STATE_READY);
    await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] });
    const missing = await codeOf(loadModel("nothing-here"));
    assert.equal(missing.code, status.NOT_FOUND);
    const traversal = await codeOf(loadModel("../etc"));
    assert.equal(traversal.code, status.INVALID_ARGUMENT);
  });

  it("reloads under load with zero failed requests, then serves the new version", async () => {
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const versions = new Set<string>();
    const worker = async () => {
      while (!stop) {
        try {
          const res = await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [1, 1, 1, 1])], outputs: ["y"] });
          versions.add(res.version);
          assert.deepEqual([...readFp32(res.outputs[0])], [3, 4, 5, 6]);
          ok++;
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const load = Array.from({ length: 16 }, worker);
    await new Promise((r) => setTimeout(r, 100));
    await loadModel("affine"); // same version, new sessions
    await mkdir(join(h.root, "affine", "2"), { recursive: true });
    await copyFile(join(h.root, "affine", "1", "model.onnx"), join(h.root, "affine", "2", "model.onnx"));
    await loadModel("affine"); // version 2 comes up, version 1 drains
    await new Promise((r) => setTimeout(r, 200));
    await loadModel("affine");
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, [], "no request may fail during a reload");
    assert.ok(ok > 50, `${ok} requests succeeded during the reloads`);
    assert.ok(versions.has("2"));
    const model = (await getModel("affine")).model!;
    assert.deepEqual(model.versions.map((v) => v.version), ["2"]);
  });

  it("keeps serving the old file when a reload finds a corrupt one", async () => {
    await writeFile(join(h.root, "affine", "2", "model.onnx"), "garbage");
    const res = await loadModel("affine");
    assert.equal(res.model!.state, ModelState.MODEL_STATE_READY);
    assert.match(res.model!.versions[0].reason, /reload failed, still serving the previous file/);
    await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [0, 0, 0, 0])] });
  });
});

describe("graceful shutdown", () => {
  it("finishes calls in flight before it stops", async () => {
    const h = await startHarness({ slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } } });
    // Connected first: a cold channel may take longer than the wait below to start its calls, and calls the
    // client never started are not calls in flight.
    await h.predict({ model: "slow", inputs: [row(9)] });
    const calls = Array.from({ length: 4 }, (_, i) => h.predict({ model: "slow", inputs: [row(i)] }));
    await new Promise((r) => setTimeout(r, 10));
    const closing = h.close();
    const results = await Promise.allSettled(calls);
    await closing;
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled", "fulfilled"]);
  });
});
