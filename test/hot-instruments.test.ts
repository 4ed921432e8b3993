// The hot path's instruments against the OpenTelemetry SDK's own: the same values recorded into both must
// serialize to the same Prometheus text, whatever the attribute sets' identity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { HotCounter, HotHistogram, hotMetricProducer } from "../server/dist/telemetry/hot-instruments.js";

async function prometheusText(exporter: PrometheusExporter): Promise<string> {
  const text = new PrometheusSerializer().serialize((await exporter.collect()).resourceMetrics);
  // Only the series: the resource's target_info line differs between the two providers.
  return text.split("\n").filter((line) => line.includes("aiaas_")).join("\n");
}

test("histograms and counters serialize exactly as the SDK's own for the same records", async () => {
  const sdkExporter = new PrometheusExporter({ preventServerStart: true });
  const meter = new MeterProvider({ readers: [sdkExporter] }).getMeter("aiaas.server");
  const sdkLatency = meter.createHistogram("aiaas.request.latency", { unit: "ms", description: "latency" });
  const sdkSize = meter.createHistogram("aiaas.batch.size", { unit: "{row}", description: "rows", advice: { explicitBucketBoundaries: [1, 2, 4, 8] } });
  const sdkCount = meter.createCounter("aiaas.request.count", { description: "count" });

  const latency = new HotHistogram({ name: "aiaas.request.latency", unit: "ms", description: "latency" });
  const size = new HotHistogram({ name: "aiaas.batch.size", unit: "{row}", description: "rows" }, [1, 2, 4, 8]);
  const count = new HotCounter({ name: "aiaas.request.count", description: "count" });
  const hotExporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [hotMetricProducer("aiaas.server", () => [latency, size, count])] });
  new MeterProvider({ readers: [hotExporter] });

  const a = { tenant: "", model: "m", version: "1" };
  const b = { tenant: "t1", model: "m", version: "2" };
  // Boundary values land in the bucket they bound (inclusive upper bounds), and past the last one.
  const values = [0, 0.5, 5, 5.0001, 10, 99, 100, 7500, 10_000, 12_345, 2.25];
  for (const [i, v] of values.entries()) {
    const attributes = i % 3 === 0 ? b : a;
    sdkLatency.record(v, attributes);
    latency.record(v, attributes);
  }
  for (const rows of [1, 2, 3, 4, 8, 9, 64]) {
    sdkSize.record(rows, a);
    size.record(rows, a);
  }
  for (let i = 0; i < 5; i++) {
    const coded = { ...a, code: i % 2 ? "OK" : "INVALID_ARGUMENT" };
    sdkCount.add(1, coded);
    count.add(1, coded);
  }
  const hot = await prometheusText(hotExporter);
  assert.match(hot, /aiaas_request_latency_bucket\{tenant="t1",model="m",version="2",otel_scope_name="aiaas.server",le="0"\} 1/);
  assert.equal(hot, await prometheusText(sdkExporter));
});

test("a set made anew for each record still counts into one series; distinct sets stay apart", async () => {
  const count = new HotCounter({ name: "aiaas.rpc.count", description: "rpcs" });
  const histogram = new HotHistogram({ name: "aiaas.rpc.duration", unit: "ms", description: "durations" });
  const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [hotMetricProducer("aiaas.server", () => [count, histogram])] });
  new MeterProvider({ readers: [exporter] });
  for (let i = 0; i < 100; i++) {
    count.add(1, { method: "Predict", code: "OK" });
    // Key order does not make another series.
    histogram.record(i, i % 2 ? { method: "Predict", code: "OK" } : { code: "OK", method: "Predict" });
  }
  count.add(2, { method: "Train", code: "OK" });
  histogram.record(Number.NaN, { method: "Predict", code: "OK" });
  const text = await prometheusText(exporter);
  assert.match(text, /aiaas_rpc_count_total\{method="Predict",code="OK",otel_scope_name="aiaas.server"\} 100\n/);
  assert.match(text, /aiaas_rpc_count_total\{method="Train",code="OK",otel_scope_name="aiaas.server"\} 2\n/);
  assert.match(text, /aiaas_rpc_duration_count\{(code="OK",method="Predict"|method="Predict",code="OK"),otel_scope_name="aiaas.server"\} 100\n/, "one series, NaN not recorded");
  assert.match(text, /aiaas_rpc_duration_sum\{[^}]*\} 4950\n/);
});

test("past 2,000 series an instrument records into one overflow series, as the SDK's default limit does", async () => {
  const count = new HotCounter({ name: "aiaas.request.count", description: "count" });
  const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [hotMetricProducer("aiaas.server", () => [count])] });
  new MeterProvider({ readers: [exporter] });
  for (let i = 0; i < 2_500; i++) count.add(1, { model: `m${i}` });
  count.add(1, { model: "m0" });
  const lines = (await prometheusText(exporter)).split("\n").filter((l) => l.startsWith("aiaas_request_count_total{"));
  assert.equal(lines.length, 2_000);
  assert.ok(lines.includes('aiaas_request_count_total{model="m0",otel_scope_name="aiaas.server"} 2'), "a series made before the limit goes on counting");
  assert.ok(lines.includes('aiaas_request_count_total{otel_metric_overflow="true",otel_scope_name="aiaas.server"} 501'), lines.at(-1));
});
