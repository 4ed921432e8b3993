// Serving heals itself: a session worker that exits (a real thread exit, injected through the AIAAS_TEST_HOOKS
// fault hook) or hangs past max_run_ms is replaced without an operator; the requests it held run once more,
// readiness says UNAVAILABLE while no session is live, and a version whose sessions keep dying is FAILED
// while its other versions serve.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelState } from "@aiaas/sdk/gen";
import type { LoadedVersion } from "@aiaas/server";
import { affineModel } from "./support/fixtures.js";
import { fp32, readFp32, startHarness, unary, type Harness } from "./support/harness.js";

process.env.AIAAS_TEST_HOOKS = "1";

const x = fp32("x", [1, 4], [1, 1, 1, 1]);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe("self-healing sessions", () => {
  let h: Harness;
  const version = (name: string, v = ""): LoadedVersion => h.server.registry.resolve(name, v);
  before(async () => {
    h = await startHarness(
      {
        // The faults are injected into the workers: no request may bypass them on the idle path (inline_run_budget_us).
        one: { model: affineModel(), config: { instance_count: 1, inline_run_budget_us: 0 } },
        two: { model: affineModel(), config: { instance_count: 2, inline_run_budget_us: 0 } },
        stuck: { model: affineModel(), config: { instance_count: 1, max_run_ms: 300, inline_run_budget_us: 0 } },
        flaky: { model: affineModel(), versions: [1, 2], config: { instance_count: 1, version_policy: { all: true }, inline_run_budget_us: 0 } },
      },
      { http: { port: 0 }, supervision: { backoffMs: 200, crashLimit: 3, crashWindowMs: 60_000 } },
    );
  });
  after(() => h.close());

  it("replaces a session whose thread exits under load: no request fails, readiness says UNAVAILABLE meanwhile", async () => {
    const loaded = version("one");
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const res = await h.predict({ model: "one", inputs: [x] });
          assert.deepEqual([...readFp32(res.outputs[0]!)], [3, 4, 5, 6]);
          ok++;
        } catch (error) {
          failures.push(error);
        }
      }
    });
    await sleep(200);
    const crashedAt = performance.now();
    await loaded.sessions[0]!.session!.injectFault({ kind: "exit" }).catch(() => undefined);
    await until("the version to leave READY", () => loaded.health().state !== "ready");
    const status = await unary(h.models.getModel.bind(h.models), { name: "one" });
    assert.equal(status.model!.state, ModelState.MODEL_STATE_UNAVAILABLE, "GetModel tells the truth while healing");
    assert.match(status.model!.versions[0]!.reason, /exited with code 70/);
    const ready = await fetch(`http://127.0.0.1:${h.server.httpPort}/v2/models/one/ready`);
    assert.equal(ready.status, 503, "/v2/models/one/ready is 503 while no session is live");
    assert.equal((await fetch(`http://127.0.0.1:${h.server.httpPort}/v2/health/ready`)).status, 503, "the pod leaves the load balancer");
    await until("the version to heal", () => loaded.health().state === "ready");
    const healedMs = performance.now() - crashedAt;
    await sleep(200);
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, [], "requests held by the dead worker ran again, queued ones waited");
    assert.ok(ok > 50, `requests were served (${ok})`);
    assert.equal(loaded.sessions[0]!.restartCount, 1);
    assert.equal((await fetch(`http://127.0.0.1:${h.server.httpPort}/v2/models/one/ready`)).status, 200);
    console.log(`# session replaced and serving ${healedMs.toFixed(0)} ms after its thread exited (backoff 200 ms)`);
  });

  it("a version with another live session stays READY while one is replaced", async () => {
    const loaded = version("two");
    await loaded.sessions[1]!.session!.injectFault({ kind: "exit" }).catch(() => undefined);
    await until("the slot to restart", () => loaded.sessions[1]!.state !== "live");
    assert.equal(loaded.health().state, "ready");
    const res = await h.predict({ model: "two", inputs: [x] });
    assert.deepEqual([...readFp32(res.outputs[0]!)], [3, 4, 5, 6]);
    await until("the slot to heal", () => loaded.sessions[1]!.state === "live");
  });

  it("recycles a worker stuck in a run past max_run_ms and runs the request again on the replacement", async () => {
    const loaded = version("stuck");
    await loaded.sessions[0]!.session!.injectFault({ kind: "hang", ms: 60_000 });
    const started = Date.now();
    const res = await h.predict({ model: "stuck", inputs: [x] });
    assert.deepEqual([...readFp32(res.outputs[0]!)], [3, 4, 5, 6]);
    assert.ok(Date.now() - started < 30_000, "answered by a replacement, not after the 60 s hang");
    assert.equal(loaded.sessions[0]!.restartCount, 1);
    assert.equal(loaded.batcher.stats.rerunCount, 1);
  });

  it("gives a crash-looping version up as FAILED while the model's other version serves", async () => {
    const v2 = version("flaky", "2");
    for (let i = 0; i < 3; i++) {
      await until("a live session to crash", () => v2.sessions[0]!.state === "live");
      await v2.sessions[0]!.session!.injectFault({ kind: "exit" }).catch(() => undefined);
      await until("the crash to register", () => v2.sessions[0]!.state !== "live");
    }
    await until("the version to fail", () => v2.health().state === "failed");
    const status = await unary(h.models.getModel.bind(h.models), { name: "flaky" });
    const byVersion = new Map(status.model!.versions.map((v) => [v.version, v]));
    assert.equal(byVersion.get("2")!.state, ModelState.MODEL_STATE_FAILED);
    assert.match(byVersion.get("2")!.reason, /died 3 times within 60 s/);
    assert.equal(byVersion.get("1")!.state, ModelState.MODEL_STATE_READY);
    assert.equal(status.model!.state, ModelState.MODEL_STATE_READY, "the model serves on version 1");
    const res = await h.predict({ model: "flaky", inputs: [x] });
    assert.equal(res.version, "1", "a request naming no version goes to the version that serves");
    await assert.rejects(h.predict({ model: "flaky", version: "2", inputs: [x] }), (e: { code: number; details: string }) => e.code === 9 && /failed/.test(e.details));
    assert.equal((await fetch(`http://127.0.0.1:${h.server.httpPort}/v2/models/flaky/versions/2/ready`)).status, 503);
  });
});
