import { metrics, trace } from "@opentelemetry/api";
import { HotCounter, HotHistogram, hotMetricProducer } from "./hot-instruments.js";

// Instruments only; which exporter (if any) receives them is the operator's choice at start-up
// (`aiaas serve --http-port` serves them for Prometheus). The per-request and per-batch ones are hot-path
// instruments (hot-instruments.ts) that the readers collect through `metricProducer()`; nothing is recorded
// until a reader is installed.
// A small model answers in well under a millisecond: the SDK's default buckets (0, 5, 10 … ms) would put
// every request of it in one bucket, and any quantile read from them (Grafana's, the console's) would be a guess.
const LATENCY_BOUNDARIES = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export const instruments = {
  queueWait: new HotHistogram({ name: "aiaas.batch.queue_wait", unit: "ms", description: "Time a request waited in its model's queue" }, LATENCY_BOUNDARIES),
  batchSize: new HotHistogram({ name: "aiaas.batch.size", unit: "{row}", description: "Rows per batch run" }, [1, 2, 4, 8, 16, 32, 64, 128, 256]),
  runTime: new HotHistogram({ name: "aiaas.batch.run_time", unit: "ms", description: "ONNX Runtime session.run time per batch" }, LATENCY_BOUNDARIES),
  requestLatency: new HotHistogram({ name: "aiaas.request.latency", unit: "ms", description: "Predict latency from decode to reply" }, LATENCY_BOUNDARIES),
  requests: new HotCounter({ name: "aiaas.request.count", description: "Predict requests by model and gRPC status code" }),
  rpcDuration: new HotHistogram({ name: "aiaas.rpc.duration", unit: "ms", description: "Every RPC's duration (a stream's: until it ends), by method and status code" }),
  rpcCount: new HotCounter({ name: "aiaas.rpc.count", description: "Every RPC by method and status code" }),
};

/** The producer that hands the instruments above to a metric reader (one per reader); recording starts. */
export function metricProducer() {
  return hotMetricProducer("aiaas.server", () => Object.values(instruments));
}

export const tracer = trace.getTracer("aiaas.server");

/**
 * Whether spans go anywhere. Until a tracer provider is registered the API hands out no-op spans, which
 * still cost an object or two per request on the hot path; the hot path makes none while this is false.
 */
export let tracing = false;

/** Called once a tracer provider is registered (telemetry/setup.ts). */
export function enableTracing(): void {
  tracing = true;
}

/** What the server reports about itself whenever it is scraped, before and between requests. */
export interface ServerGauges {
  /** Client connections open now. */
  connections(): Promise<number>;
  /** Model versions that serve now (no names: those are the tenants' business). */
  versionsReady(): number;
  /** Training jobs this server knows, by state ("queued", "running" …; no tenants, no names). */
  jobs(): Promise<Readonly<Record<string, number>>>;
}

/** Registers the server's observable gauges on the current meter; returns their removal (at shutdown). */
export function observeServer(gauges: ServerGauges): () => void {
  const meter = metrics.getMeter("aiaas.server");
  const connections = meter.createObservableUpDownCounter("aiaas.connections", { description: "Open client connections" });
  const ready = meter.createObservableGauge("aiaas.model.versions_ready", { description: "Model versions that serve" });
  const observe = async (result: { observe(value: number): void }): Promise<void> => result.observe(await gauges.connections());
  const observeReady = (result: { observe(value: number): void }): void => result.observe(gauges.versionsReady());
  const jobs = meter.createObservableGauge("aiaas.jobs", { description: "Training jobs by state" });
  const observeJobs = async (result: { observe(value: number, attributes: { state: string }): void }): Promise<void> => {
    for (const [state, n] of Object.entries(await gauges.jobs())) result.observe(n, { state });
  };
  connections.addCallback(observe);
  ready.addCallback(observeReady);
  jobs.addCallback(observeJobs);
  return () => {
    connections.removeCallback(observe);
    ready.removeCallback(observeReady);
    jobs.removeCallback(observeJobs);
  };
}
