import { metrics, trace, type Meter } from "@opentelemetry/api";

// Instruments only; which exporter (if any) receives them is the operator's choice at start-up
// (`aiaas serve --http-port` serves them for Prometheus). The metrics API hands out no-op meters until a
// provider is registered, so the instruments are made again when one is (refreshInstruments).
function createInstruments(meter: Meter) {
  return {
    queueWait: meter.createHistogram("aiaas.batch.queue_wait", { unit: "ms", description: "Time a request waited in its model's queue" }),
    batchSize: meter.createHistogram("aiaas.batch.size", {
      unit: "{row}",
      description: "Rows per batch run",
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256] },
    }),
    runTime: meter.createHistogram("aiaas.batch.run_time", { unit: "ms", description: "ONNX Runtime session.run time per batch" }),
    requestLatency: meter.createHistogram("aiaas.request.latency", { unit: "ms", description: "Predict latency from decode to reply" }),
    requests: meter.createCounter("aiaas.request.count", { description: "Predict requests by model and gRPC status code" }),
    rpcDuration: meter.createHistogram("aiaas.rpc.duration", { unit: "ms", description: "Every RPC's duration (a stream's: until it ends), by method and status code" }),
    rpcCount: meter.createCounter("aiaas.rpc.count", { description: "Every RPC by method and status code" }),
  };
}

export const tracer = trace.getTracer("aiaas.server");

export let instruments = createInstruments(metrics.getMeter("aiaas.server"));

/** Re-creates the instruments on the meter provider registered now. */
export function refreshInstruments(): void {
  instruments = createInstruments(metrics.getMeter("aiaas.server"));
}

/** What the server reports about itself whenever it is scraped, before and between requests. */
export interface ServerGauges {
  /** Client connections open now. */
  connections(): Promise<number>;
  /** Model versions that serve now (no names: those are the tenants' business). */
  versionsReady(): number;
}

/** Registers the server's observable gauges on the current meter; returns their removal (at shutdown). */
export function observeServer(gauges: ServerGauges): () => void {
  const meter = metrics.getMeter("aiaas.server");
  const connections = meter.createObservableUpDownCounter("aiaas.connections", { description: "Open client connections" });
  const ready = meter.createObservableGauge("aiaas.model.versions_ready", { description: "Model versions that serve" });
  const observe = async (result: { observe(value: number): void }): Promise<void> => result.observe(await gauges.connections());
  const observeReady = (result: { observe(value: number): void }): void => result.observe(gauges.versionsReady());
  connections.addCallback(observe);
  ready.addCallback(observeReady);
  return () => {
    connections.removeCallback(observe);
    ready.removeCallback(observeReady);
  };
}
