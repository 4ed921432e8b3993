// The operations HTTP port: the protocol's REST health paths with the right codes, and /metrics in the
// Prometheus text format with counters that move with traffic.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient, Tensor } from "@aiaas/sdk";
import { installTelemetry } from "@aiaas/server";
import { KeyStore } from "../server/src/auth/index.js";
import { trainingChunks, trainingSpec } from "./support/console-fixture.js";
import { affineModel, writeRepository } from "./support/fixtures.js";
import { fp32, startHarness, unary, type Harness } from "./support/harness.js";
import { parseExposition, type Family } from "./support/prometheus.js";

describe("operations HTTP port", () => {
  let h: Harness;
  let base: string;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { http: { port: 0, metrics: installTelemetry({ prometheus: true, env: {} }).metricsHandler } });
    base = `http://127.0.0.1:${h.server.httpPort}`;
  });
  after(() => h.close());

  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { code: res.status, text: await res.text() };
  };

  it("answers the health paths with the right codes", async () => {
    assert.equal((await get("/v2/health/live")).code, 200);
    assert.equal((await get("/v2/health/ready")).code, 200);
    assert.equal((await get("/v2/models/affine/ready")).code, 200);
    assert.equal((await get("/v2/models/affine/versions/1/ready")).code, 200);
    assert.equal((await get("/v2/models/affine/versions/9/ready")).code, 404);
    assert.equal((await get("/v2/models/nope/ready")).code, 404);
    await unary(h.models.unloadModel.bind(h.models), { name: "affine" });
    const unloaded = await get("/v2/models/affine/ready");
    assert.equal(unloaded.code, 503);
    assert.match(unloaded.text, /not loaded/);
    await unary(h.models.loadModel.bind(h.models), { name: "affine" });
    assert.equal((await get("/v2/models/affine/ready")).code, 200);
    assert.equal((await get("/nothing")).code, 404);
  });

  it("answers 503 on readiness while a model loads, and for a model that failed", async () => {
    const { writeRepository, slowModel } = await import("./support/fixtures.js");
    await writeRepository(h.root, {
      late: { model: slowModel(), config: { instance_count: 2 } },
      broken: { model: new TextEncoder().encode("not onnx") },
    });
    let loaded = false;
    const loading = unary(h.models.loadModel.bind(h.models), { name: "late" }).then(() => (loaded = true));
    // Worker threads start, sessions load and warm up: poll the probes meanwhile.
    const seen = new Set<string>();
    while (!loaded) {
      const [server, model] = await Promise.all([get("/v2/health/ready"), get("/v2/models/late/ready")]);
      if (!loaded) seen.add(`server ${server.code}`).add(`model ${model.code}`);
    }
    await loading;
    assert.ok(seen.has("server 503"), `readiness while loading: ${[...seen].join(", ")}`);
    assert.ok(seen.has("model 503"), `the model's readiness while it loads: ${[...seen].join(", ")}`);
    assert.equal((await get("/v2/health/ready")).code, 200);
    assert.equal((await get("/v2/models/late/ready")).code, 200);
    await unary(h.models.loadModel.bind(h.models), { name: "broken" });
    const broken = await get("/v2/models/broken/ready");
    assert.equal(broken.code, 503);
    assert.match(broken.text, /no ready version/);
  });

  it("serves Prometheus text whose counters move with traffic", async () => {
    // Parsed as Prometheus parses the text format (every family typed, values numeric, histograms cumulative).
    const family = (text: string, name: string): Family | undefined => parseExposition(text).find((f) => f.name === name);
    const count = (text: string): number =>
      parseExposition(text).flatMap((f) => f.samples).find((s) => s.name === "aiaas_request_count_total" && s.labels.model === "affine" && s.labels.code === "OK")?.value ?? 0;
    const before = count((await get("/metrics")).text);
    for (let i = 0; i < 5; i++) await h.predict({ model: "affine", inputs: [fp32("x", [1, 4], [i, i, i, i])] });
    const { code, text } = await get("/metrics");
    assert.equal(code, 200);
    assert.equal(count(text) - before, 5);
    assert.equal(family(text, "aiaas_request_count")?.type ?? family(text, "aiaas_request_count_total")?.type, "counter");
    const batches = family(text, "aiaas_batch_size");
    assert.equal(batches?.type, "histogram");
    assert.ok(batches.samples.some((s) => s.name === "aiaas_batch_size_count" && s.labels.model === "affine" && s.value >= 5), "the 5 predictions ran in batches the histogram counted");
    const runTime = parseExposition(text).find((f) => /^aiaas_batch_run_time(_milliseconds)?$/.test(f.name));
    assert.equal(runTime?.type, "histogram");
    // The parser is strict where it matters: a malformed exposition is refused.
    assert.throws(() => parseExposition('aiaas_x_total{model="a" 5\n'));
    assert.throws(() => parseExposition("# TYPE aiaas_x counter\naiaas_x five\n"), /not a number/);
    assert.throws(() => parseExposition("aiaas_y 1\n"), /no # TYPE line/);
    assert.doesNotMatch(text, /x=|raw_data|fp32/, "no payload in any label");
  });

  it("counts and times every RPC by method and status code, not only Predict", async () => {
    const count = (text: string, method: string, code: string): number => {
      const line = text.split("\n").find((l) => l.startsWith("aiaas_rpc_count_total{") && l.includes(`method="${method}"`) && l.includes(`code="${code}"`));
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    const before = (await get("/metrics")).text;
    await unary(h.models.listModels.bind(h.models), {});
    await unary(h.models.getModel.bind(h.models), { name: "no-such-model" }).catch(() => undefined);
    const after = (await get("/metrics")).text;
    assert.equal(count(after, "ListModels", "OK") - count(before, "ListModels", "OK"), 1);
    assert.equal(count(after, "GetModel", "NOT_FOUND") - count(before, "GetModel", "NOT_FOUND"), 1);
    assert.match(after, /aiaas_rpc_duration(_milliseconds)?_bucket\{[^}]*method="GetModel"/);
  });
});

describe("operations HTTP port with tenants", () => {
  let h: Harness;
  let dir: string;
  const tokens: Record<string, string> = {};
  const metrics = installTelemetry({ prometheus: true, env: {} }).metricsHandler;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-metrics-"));
    const store = await KeyStore.open(join(dir, "keys.json"));
    for (const [name, tenant, role] of [["alpha", "alpha", "predict"], ["beta", "beta", "predict"], ["admin", "ops", "admin"]] as const) {
      tokens[name] = (await store.create({ tenant, roles: [role] })).token;
    }
    // Two tenants with a model of the same name.
    await writeRepository(join(dir, "tenants", "alpha"), { secret: { model: affineModel() } });
    await writeRepository(join(dir, "tenants", "beta"), { secret: { model: affineModel() } });
    h = await startHarness(
      { "open-model": { model: affineModel() } },
      { auth: { keysFile: join(dir, "keys.json"), tenantModelsDir: join(dir, "tenants") }, http: { port: 0, metrics, metricsToken: "scrape-token-1234" } },
    );
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });
  const scrape = async (port: number | undefined, token?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { code: res.status, text: await res.text(), challenge: res.headers.get("www-authenticate") };
  };

  it("/metrics needs the metrics token or an admin key; tenants' keys and strangers get 401", async () => {
    for (const token of [undefined, "wrong", tokens.alpha, `${tokens.admin}x`]) {
      const r = await scrape(h.server.httpPort, token);
      assert.equal(r.code, 401, `token ${token?.slice(0, 12)}`);
      assert.match(r.challenge ?? "", /^Bearer/);
      assert.doesNotMatch(r.text, /secret|alpha|beta/);
    }
    assert.equal((await scrape(h.server.httpPort, "scrape-token-1234")).code, 200);
    assert.equal((await scrape(h.server.httpPort, tokens.admin)).code, 200);
    // The health paths stay open and know only the public models: a tenant's model is a missing one.
    assert.equal((await fetch(`http://127.0.0.1:${h.server.httpPort}/v2/models/secret/ready`)).status, 404);
  });

  it("series carry a tenant label, so two tenants' models of one name never share a series", async () => {
    const sdk = (who: string) => createClient({ address: h.server.address, apiKey: tokens[who], retry: { maxAttempts: 1 } });
    const [alpha, beta] = [sdk("alpha"), sdk("beta")];
    try {
      for (let i = 0; i < 3; i++) await alpha.predict("secret", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
      for (let i = 0; i < 2; i++) await beta.predict("secret", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
      await beta.predict("open-model", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
    } finally {
      alpha.close();
      beta.close();
    }
    const { text } = await scrape(h.server.httpPort, tokens.admin);
    const count = (tenant: string, model: string): number => {
      const line = text.split("\n").find((l) => l.startsWith("aiaas_request_count_total{") && l.includes(`tenant="${tenant}"`) && l.includes(`model="${model}"`) && l.includes('code="OK"'));
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    assert.equal(count("alpha", "secret"), 3);
    assert.equal(count("beta", "secret"), 2);
    assert.equal(count("", "open-model"), 1, "public models carry an empty tenant");
  });

  it("without a metrics token, admin keys still open /metrics; --metrics-public opens it to anyone", async () => {
    for (const [metricsPublic, anonymous] of [[false, 401], [true, 200]] as const) {
      const other = await startHarness({}, { auth: { keysFile: join(dir, "keys.json"), tenantModelsDir: join(dir, "tenants") }, http: { port: 0, metrics, metricsPublic } });
      try {
        assert.equal((await scrape(other.server.httpPort)).code, anonymous);
        assert.equal((await scrape(other.server.httpPort, tokens.admin)).code, 200);
      } finally {
        await other.close();
      }
    }
  });
});

describe("/metrics before any request", () => {
  it("names the service and shows the server's own gauges from the start", async () => {
    const metrics = installTelemetry({ prometheus: true, env: {} }).metricsHandler;
    const h = await startHarness({ affine: { model: affineModel() }, other: { model: affineModel() } }, { http: { port: 0, metrics } });
    try {
      const text = await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text();
      assert.doesNotMatch(text, /no registered metrics/);
      assert.match(text, /target_info\{[^}]*service_name="aiaas"/);
      assert.doesNotMatch(text, /unknown_service/);
      const families = parseExposition(text);
      const ready = families.find((f) => f.name === "aiaas_model_versions_ready")?.samples.reduce((n, s) => n + s.value, 0);
      assert.equal(ready, 2, "two versions serve");
      const connections = families.find((f) => f.name === "aiaas_connections")?.samples[0]?.value;
      assert.ok(Number.isInteger(connections) && connections! >= 0, `aiaas_connections ${connections}`);
    } finally {
      await h.close();
    }
  });

  it("counts training jobs by state, every state present from the start", async () => {
    const metrics = installTelemetry({ prometheus: true, env: {} }).metricsHandler;
    const h = await startHarness({}, { http: { port: 0, metrics } });
    const client = createClient({ address: h.server.address });
    const jobs = async (): Promise<Record<string, number>> => {
      const text = await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text();
      const family = parseExposition(text).find((f) => f.name === "aiaas_jobs");
      return Object.fromEntries((family?.samples ?? []).map((s) => [s.labels.state, s.value]));
    };
    try {
      const states = { queued: 0, validating: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
      assert.deepEqual(await jobs(), states);
      for await (const e of client.train(trainingSpec("gauge-job", 1), trainingChunks(2))) void e;
      assert.deepEqual(await jobs(), { ...states, succeeded: 1 });
    } finally {
      client.close();
      await h.close();
    }
  });
});
