// OTLP export switched on by the standard OTEL_* environment: a collector stand-in on loopback receives
// the server's traces and metrics over OTLP/HTTP.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { Tensor, createClient } from "@aiaas/sdk";
import { copyEmbeddedModels } from "./support/embedded-models.js";

const root = new URL("..", import.meta.url).pathname;

describe("OTLP export from the OTEL_* environment", () => {
  let collector: Server;
  let port = 0;
  const received: Array<{ path: string; type: string; body: string }> = [];
  before(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        received.push({ path: req.url ?? "", type: String(req.headers["content-type"]), body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    port = await new Promise<number>((resolve) => collector.listen(0, "127.0.0.1", () => resolve((collector.address() as { port: number }).port)));
  });
  after(() => new Promise<void>((resolve) => collector.close(() => resolve())));

  /** `aiaas serve` exporting to the collector stand-in, with the given export intervals. */
  async function serve(t: { after(fn: () => Promise<void> | void): void }, intervals: { metrics: string; spans: string }) {
    const models = await copyEmbeddedModels();
    t.after(() => models.remove());
    const server = spawn(process.execPath, ["server/dist/bin/aiaas.js", "serve", "--models", models.dir, "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu"], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_METRIC_EXPORT_INTERVAL: intervals.metrics, OTEL_BSP_SCHEDULE_DELAY: intervals.spans },
    });
    const logs: string[] = [];
    const address = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server.stdout! }).on("line", (line) => {
        logs.push(line);
        const entry = JSON.parse(line) as { address?: string };
        if (entry.address) resolve(entry.address);
      });
      server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    assert.ok(logs.some((l) => l.includes("exporting OpenTelemetry over OTLP/HTTP")), logs.join("\n"));
    const client = createClient({ address });
    for (let i = 0; i < 5; i++) await client.predict("mnist-linear", { image: Tensor.float32([1, 784], new Float32Array(784)) });
    client.close();
    const stop = async (): Promise<void> => {
      const exited = new Promise<number | null>((resolve) => server.once("exit", resolve));
      server.kill("SIGTERM");
      assert.equal(await exited, 0);
    };
    return { stop };
  }

  function checkReceived(): void {
    const traces = received.filter((r) => r.path === "/v1/traces");
    const metrics = received.filter((r) => r.path === "/v1/metrics");
    // The OTLP/HTTP exporters post JSON: readable, so check what they carry.
    assert.ok(traces.some((r) => r.body.includes('"aiaas.predict"')), `traces: ${traces.map((r) => r.body).join("\n")}`);
    assert.ok(metrics.some((r) => r.body.includes('"aiaas.request.count"') && r.body.includes('"aiaas.batch.size"')), "metrics carry the server's instruments");
    assert.ok(received.every((r) => r.type.startsWith("application/json")));
    assert.ok(received.every((r) => !r.body.includes("rawData") && !r.body.includes("raw_data")), "no payload in telemetry");
  }

  it("exports traces and metrics of real traffic while it serves", { timeout: 60_000 }, async (t) => {
    received.length = 0;
    const { stop } = await serve(t, { metrics: "300", spans: "100" });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !(received.some((r) => r.path === "/v1/traces") && received.some((r) => r.path === "/v1/metrics"))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop();
    checkReceived();
  });

  it("flushes what it has not exported yet when it stops: SIGTERM right after the traffic, long export intervals", { timeout: 60_000 }, async (t) => {
    received.length = 0;
    const { stop } = await serve(t, { metrics: "600000", spans: "600000" });
    assert.equal(received.length, 0, "nothing is exported before the intervals end");
    await stop();
    checkReceived();
  });
});
