import { metrics, trace } from "@opentelemetry/api";

// Instruments only; which exporter (if any) receives them is the operator's choice at start-up.
const meter = metrics.getMeter("aiaas.server");

export const tracer = trace.getTracer("aiaas.server");

export const instruments = {
  queueWait: meter.createHistogram("aiaas.batch.queue_wait", { unit: "ms", description: "Time a request waited in its model's queue" }),
  batchSize: meter.createHistogram("aiaas.batch.size", { unit: "{row}", description: "Rows per batch run" }),
  runTime: meter.createHistogram("aiaas.batch.run_time", { unit: "ms", description: "ONNX Runtime session.run time per batch" }),
  requestLatency: meter.createHistogram("aiaas.request.latency", { unit: "ms", description: "Predict latency from decode to reply" }),
  requests: meter.createCounter("aiaas.request.count", { description: "Predict requests by model and gRPC status code" }),
};
