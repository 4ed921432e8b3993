// The console's API on the operations port, over real HTTP against a real server with API keys: each call is
// the gRPC method of its name with the same checks (a tenant sees exactly what it sees over gRPC; another
// tenant's model is exactly as missing), streams are server-sent events, the traffic it shows is the traffic
// /metrics counts, and neither keys nor payloads reach the logs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Tensor } from "@aiaas/sdk";
import { bucketQuantile } from "../server/dist/telemetry/traffic-monitor.js";
import { startConsoleFixture, trainingChunks, trainingSpec, type ConsoleFixture } from "./support/console-fixture.js";

type Who = "alpha" | "beta" | "admin" | "reader" | undefined;

describe("the console's API", () => {
  let f: ConsoleFixture;
  before(async () => {
    f = await startConsoleFixture();
  });
  after(() => f.close());

  const headers = (who: Who): Record<string, string> => ({ "content-type": "application/json", ...(who ? { authorization: `Bearer ${f.tokens[who]}` } : {}) });
  const post = async (who: Who, method: string, body: object = {}): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${f.url}/api/aiaas.v1.${method}`, { method: "POST", headers: headers(who), body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
  /** A stream's events until `stop` says so (or it ends). */
  const stream = async (who: Who, method: string, body: object, stop: (events: { event: string; data: any }[]) => boolean): Promise<{ status: number; events: { event: string; data: any }[] }> => {
    const controller = new AbortController();
    const res = await fetch(`${f.url}/api/aiaas.v1.${method}`, { method: "POST", headers: headers(who), body: JSON.stringify(body), signal: controller.signal });
    const events: { event: string; data: any }[] = [];
    if (res.headers.get("content-type") !== "text/event-stream") return { status: res.status, events: [{ event: "http", data: await res.json() }] };
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(":")) continue;
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
          events.push({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) });
        }
        if (events.at(-1)?.event === "end" || stop(events)) break;
      }
    } finally {
      controller.abort();
    }
    return { status: res.status, events };
  };

  it("GET /api/session names the key's tenant and roles; no key or a bad one is 401 with the gRPC message", async () => {
    const alpha = await (await fetch(`${f.url}/api/session`, { headers: headers("alpha") })).json();
    assert.deepEqual(alpha, { authentication: true, keyId: f.keyIds.alpha, tenant: "alpha", roles: ["predict", "train"] });
    const none = await fetch(`${f.url}/api/session`);
    assert.equal(none.status, 401);
    assert.match(((await none.json()) as { message: string }).message, /needs an API key/);
    const bad = await fetch(`${f.url}/api/session`, { headers: { authorization: "Bearer not-a-key" } });
    assert.equal(bad.status, 401);
  });

  it("each tenant lists its own and the public models; another tenant's model is 404 exactly as a missing one", async () => {
    for (const [who, own, other] of [["alpha", "alpha-model", "beta-model"], ["beta", "beta-model", "alpha-model"]] as const) {
      const listed = await post(who, "Models/ListModels");
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.json.models.map((m: { name: string }) => m.name).sort(), [own, "shared"].sort());
      assert.equal(listed.json.models.find((m: { name: string }) => m.name === own).state, "MODEL_STATE_READY");
      const theirs = await post(who, "Models/GetModel", { name: other });
      const missing = await post(who, "Models/GetModel", { name: "no-such-model" });
      assert.equal(theirs.status, 404);
      assert.equal(theirs.json.code, "NOT_FOUND");
      assert.equal(theirs.json.message.replace(other, "X"), missing.json.message.replace("no-such-model", "X"), "the same words as a missing model");
    }
  });

  it("roles hold as over gRPC: a predict-only key cannot load models or list jobs, a tenant key cannot list keys", async () => {
    assert.equal((await post("reader", "Models/LoadModel", { name: "alpha-model" })).status, 403);
    const jobs = await post("reader", "Training/ListJobs");
    assert.equal(jobs.status, 403);
    assert.match(jobs.json.message, /lacks the "train" role/);
    assert.equal((await post("alpha", "Admin/ListKeys")).status, 403);
    assert.equal((await post("admin", "Admin/ListKeys")).status, 200);
    // A stream refused before it starts is an HTTP status too, not a 200 with an error event.
    const refused = await stream("reader", "Training/WatchJob", { jobId: "x" }, () => true);
    assert.equal(refused.status, 403);
  });

  it("refuses what is not a console call: other content types, unknown methods, payload methods, bodies that are not JSON", async () => {
    const form = await fetch(`${f.url}/api/aiaas.v1.Models/ListModels`, { method: "POST", headers: { authorization: `Bearer ${f.tokens.alpha}`, "content-type": "text/plain" }, body: "{}" });
    assert.equal(form.status, 415, "a cross-site form post is refused (a JSON body needs a preflight this port never allows)");
    assert.equal(form.headers.get("access-control-allow-origin"), null);
    assert.equal((await post("alpha", "Inference/Predict", { model: "shared" })).status, 404, "no payload methods");
    const notJson = await fetch(`${f.url}/api/aiaas.v1.Models/ListModels`, { method: "POST", headers: headers("alpha"), body: "{nope" });
    assert.equal(notJson.status, 400);
    const huge = await fetch(`${f.url}/api/aiaas.v1.Models/GetModel`, { method: "POST", headers: headers("alpha"), body: JSON.stringify({ name: "x".repeat(70_000) }) });
    assert.equal(huge.status, 413);
  });

  it("WatchTraffic: a tenant sees its own models' traffic only, an admin every tenant's; the counts are /metrics' counts", async () => {
    const alpha = f.client("alpha");
    const beta = f.client("beta");
    const x = () => ({ x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
    const sent = { alpha: 0, beta: 0 };
    const started = Date.now();
    // Traffic over more than one sampling interval (2 s), and a failure for errors_by_code.
    while (Date.now() - started < 2500) {
      await alpha.predict("alpha-model", x());
      await beta.predict("beta-model", x());
      sent.alpha++;
      sent.beta++;
      // Paced well under the tenants' default 1,000 requests/s: traffic, not a flood.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await assert.rejects(alpha.predict("alpha-model", { x: Tensor.float32([1, 3], [1, 2, 3]) }));
    await new Promise((resolve) => setTimeout(resolve, 4500));
    const history = async (who: Who) => (await stream(who, "Models/WatchTraffic", {}, (events) => events.length > 0 && Number(events.at(-1)!.data.timeUnixMs) > Date.now() - 100)).events;
    const seen = (events: { data: any }[], model: string) => events.flatMap((e) => (e.data.versions ?? []).filter((v: { model: string }) => v.model === model));
    const alphaView = await history("alpha");
    assert.ok(seen(alphaView, "alpha-model").length > 0, "alpha sees its model's traffic");
    assert.equal(seen(alphaView, "beta-model").length, 0, "alpha never sees beta's model");
    const adminView = await history("admin");
    for (const [model, n] of [["alpha-model", sent.alpha + 1], ["beta-model", sent.beta]] as const) {
      const versions = seen(adminView, model);
      const counted = versions.reduce((sum: number, v: { requestsPerSecond: number }, i: number) => sum + v.requestsPerSecond * adminView.find((e) => (e.data.versions ?? []).includes(versions[i]))!.data.intervalSeconds, 0);
      assert.equal(Math.round(counted), n, `${model}: requests in the samples = requests sent`);
    }
    const errors = seen(adminView, "alpha-model").reduce((sum: number, v: { errorsByCode?: Record<string, string> }) => sum + Number(v.errorsByCode?.INVALID_ARGUMENT ?? 0), 0);
    assert.equal(errors, 1, "the bad request is counted by its code");
    const metrics = await (await fetch(`${f.url}/metrics`, { headers: { authorization: `Bearer ${f.tokens.admin}` } })).text();
    const fromMetrics = metrics
      .split("\n")
      .filter((l) => l.startsWith("aiaas_request_count") && l.includes('model="alpha-model"'))
      .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
    assert.equal(fromMetrics, sent.alpha + 1, "/metrics counts the same requests");
    // The SDK's watchTraffic is the same stream over gRPC, scoped the same way.
    const abort = new AbortController();
    let fromSdk = 0;
    for await (const sample of alpha.models.watchTraffic({ signal: abort.signal })) {
      assert.ok(sample.versions.every((v) => v.model === "alpha-model"), "alpha's own model only, over gRPC too");
      fromSdk += sample.versions.reduce((n, v) => n + v.requestsPerSecond * sample.intervalSeconds, 0);
      if (Math.round(fromSdk) >= sent.alpha + 1) abort.abort();
    }
    assert.equal(Math.round(fromSdk), sent.alpha + 1);
  });

  it("WatchJob streams a job's events as server-sent events to its tenant; another tenant's job is NOT_FOUND", async () => {
    let jobId = "";
    for await (const event of f.client("alpha").train(trainingSpec("console-api-job", 3), trainingChunks())) jobId = event.jobId;
    const own = await stream("alpha", "Training/WatchJob", { jobId, afterEventId: "0" }, () => false);
    assert.equal(own.status, 200);
    assert.deepEqual(own.events.at(-1), { event: "end", data: { code: "OK" } });
    assert.ok(own.events.some((e) => e.data.metrics?.trainLoss > 0), "training metrics among the events");
    assert.ok(own.events.some((e) => e.data.completed?.version === "1"), "the published version");
    const ids = own.events.slice(0, -1).map((e) => Number(e.data.eventId));
    assert.deepEqual(ids, ids.map((_, i) => i + 1), "every event, in order, from the first");
    const theirs = await stream("beta", "Training/WatchJob", { jobId }, () => false);
    const missing = await stream("beta", "Training/WatchJob", { jobId: "no-such-job" }, () => false);
    assert.deepEqual(theirs.events.at(-1)!.data.code, "NOT_FOUND");
    assert.equal(theirs.events.at(-1)!.data.message.replace(jobId, "X"), missing.events.at(-1)!.data.message.replace("no-such-job", "X"));
    assert.equal((await post("beta", "Training/GetJob", { jobId })).status, 404);
    assert.equal((await post("admin", "Training/GetJob", { jobId })).json.job.tenant, "alpha", "an admin sees every tenant's jobs");
  });

  it("keys made and revoked through the console work at once over gRPC; no token or payload is ever logged", async () => {
    const made = await post("admin", "Admin/CreateKey", { tenant: "alpha", roles: ["predict"], name: "from the console" });
    assert.equal(made.status, 200);
    const token: string = made.json.token;
    const session = (await (await fetch(`${f.url}/api/session`, { headers: { authorization: `Bearer ${token}` } })).json()) as { tenant: string };
    assert.equal(session.tenant, "alpha");
    assert.equal((await post("admin", "Admin/RevokeKey", { id: made.json.key.id })).status, 200);
    assert.equal((await fetch(`${f.url}/api/session`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    const log = f.logs.join("\n");
    for (const secret of [token, ...Object.values(f.tokens)]) assert.ok(!log.includes(secret), "no token in the logs");
    assert.ok(!log.includes("x".repeat(100)), "no request body in the logs");
    assert.ok(f.logs.some((l) => l.includes("console 127.0.0.1")), "console calls are logged by their peer");
  });

  it("the page is served with a policy that allows only this origin, and never caches a key", async () => {
    const page = await fetch(`${f.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy")!, /default-src 'none'; script-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
    const script = await fetch(`${f.url}/assets/app.js`);
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.ok((await script.text()).includes("sessionStorage"));
    assert.equal((await fetch(`${f.url}/assets/../package.json`)).status, 404);
    assert.equal((await fetch(`${f.url}/assets/nothing.js`)).status, 404);
    assert.equal((await post("alpha", "Models/ListModels")).status, 200);
    assert.equal((await fetch(`${f.url}/api/aiaas.v1.Models/ListModels`, { method: "POST", headers: headers("alpha"), body: "{}" })).headers.get("cache-control"), "no-store");
  });
});

describe("bucket quantiles", () => {
  it("match Prometheus's histogram_quantile: linear within the bucket, the last finite bound past it", () => {
    const h = { boundaries: [1, 2, 4], counts: [2, 2, 0, 0], count: 4, sum: 5 };
    assert.equal(bucketQuantile(0.5, h), 1);
    assert.equal(bucketQuantile(0.25, h), 0.5);
    assert.equal(bucketQuantile(0.75, h), 1.5);
    assert.equal(bucketQuantile(0.99, { boundaries: [1, 2], counts: [0, 1, 3], count: 4, sum: 20 }), 2, "in the +Inf bucket: the highest bound");
    assert.equal(bucketQuantile(0.5, { boundaries: [1], counts: [0, 0], count: 0, sum: 0 }), 0);
  });
});

describe("a server started with --disable-console", () => {
  it("serves neither the page nor its API, and the health and metrics paths as before", async () => {
    const { startHarness } = await import("./support/harness.js");
    const h = await startHarness({}, { http: { port: 0, console: false } });
    try {
      const base = `http://127.0.0.1:${h.server.httpPort}`;
      assert.equal((await fetch(`${base}/`)).status, 404);
      assert.equal((await fetch(`${base}/api/session`)).status, 404);
      assert.equal((await fetch(`${base}/v2/health/live`)).status, 200);
    } finally {
      await h.close();
    }
  });
});
