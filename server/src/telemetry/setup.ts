import { metrics } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { readFileSync } from "node:fs";
import { enableTracing, metricProducer } from "./instruments.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** This process's metrics in the Prometheus text format (what /metrics serves). */
export type MetricsHandler = () => Promise<string>;

export interface Telemetry {
  /** Serves /metrics in the Prometheus text format, when asked for. */
  readonly metricsHandler: MetricsHandler | undefined;
  /** Which OTLP exports the environment switched on. */
  readonly otlp: { readonly traces: boolean; readonly metrics: boolean };
  /** Flushes and stops the exporters. */
  shutdown(): Promise<void>;
}

let installed: Telemetry | undefined;

const enabled = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS"): boolean =>
  env.OTEL_SDK_DISABLED !== "true" &&
  (env[`OTEL_${signal}_EXPORTER`] ?? "otlp") !== "none" &&
  Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);

/**
 * The operator's wiring of the OpenTelemetry instruments, once per process: a Prometheus reader for
 * /metrics when `prometheus` is set, and OTLP/HTTP export of traces and metrics when the standard OTEL_*
 * environment variables name an endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or the per-signal ones; the
 * exporters read their headers, protocol details and timeouts from the same variables;
 * OTEL_METRIC_EXPORT_INTERVAL sets the metric period; OTEL_SDK_DISABLED=true or OTEL_*_EXPORTER=none turn
 * them off).
 */
export function installTelemetry(options: { readonly prometheus: boolean; readonly env?: NodeJS.ProcessEnv }): Telemetry {
  if (installed) return installed;
  const env = options.env ?? process.env;
  const readers: MetricReader[] = [];
  let metricsHandler: MetricsHandler | undefined;
  if (options.prometheus) {
    const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [metricProducer()] });
    readers.push(exporter);
    const serializer = new PrometheusSerializer();
    metricsHandler = async () => serializer.serialize((await exporter.collect()).resourceMetrics);
  }
  const otlp = { traces: enabled(env, "TRACES"), metrics: enabled(env, "METRICS") };
  if (otlp.metrics) {
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL ?? 60_000);
    readers.push(
      new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: interval > 0 ? interval : 60_000, metricProducers: [metricProducer()] }),
    );
  }
  // The service names itself (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still win, as the standard says).
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "aiaas", "service.version": VERSION }))
    .merge(resourceFromAttributes(resourceFromEnv(env)));
  const meterProvider = readers.length ? new MeterProvider({ readers, resource }) : undefined;
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  const tracerProvider = otlp.traces ? new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] }) : undefined;
  // The server's tracer comes from the API's proxy, so spans started after this reach the exporter.
  if (tracerProvider) {
    tracerProvider.register();
    enableTracing();
  }
  installed = {
    metricsHandler,
    otlp,
    async shutdown() {
      await Promise.allSettled([meterProvider?.shutdown(), tracerProvider?.shutdown()]);
    },
  };
  return installed;
}

/** OTEL_RESOURCE_ATTRIBUTES (key=value,…, percent-encoded) and OTEL_SERVICE_NAME, which takes precedence. */
function resourceFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    try {
      attributes[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      // a malformed pair is skipped, as the specification allows
    }
  }
  if (env.OTEL_SERVICE_NAME) attributes["service.name"] = env.OTEL_SERVICE_NAME;
  return attributes;
}
