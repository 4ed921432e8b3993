import type { IncomingMessage, ServerResponse } from "node:http";
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { refreshInstruments } from "./telemetry.js";

export type MetricsHandler = (request: IncomingMessage, response: ServerResponse) => void;

let installed: MetricsHandler | undefined;

/**
 * Registers an OpenTelemetry meter provider whose reader renders the Prometheus text format, and returns
 * the handler that serves it (mounted at GET /metrics on the operations port). Once per process.
 */
export function installPrometheusMetrics(): MetricsHandler {
  if (installed) return installed;
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  refreshInstruments();
  installed = (request, response) => exporter.getMetricsRequestHandler(request, response);
  return installed;
}
