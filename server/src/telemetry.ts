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
  };
}

export const tracer = trace.getTracer("aiaas.server");

export let instruments = createInstruments(metrics.getMeter("aiaas.server"));

/** Re-creates the instruments on the meter provider registered now. */
export function refreshInstruments(): void {
  instruments = createInstruments(metrics.getMeter("aiaas.server"));
}
