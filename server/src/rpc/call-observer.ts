import { SpanStatusCode } from "@opentelemetry/api";
import { codeName, type Code } from "../common/errors.js";
import { instruments, tracer, tracing } from "../telemetry/instruments.js";

/**
 * The RED telemetry of every RPC: a span, the count and the duration by method and status code. Made once
 * per method; each call gets a `done(code)` to call when it ends. Attribute sets are made once per code.
 */
export function callObserver(method: string): () => (code: number) => void {
  const byCode = new Map<number, Readonly<Record<string, string>>>();
  const attributesOf = (code: number): Readonly<Record<string, string>> => {
    let attributes = byCode.get(code);
    if (!attributes) byCode.set(code, (attributes = { method, code: codeName(code as Code) }));
    return attributes;
  };
  const spanName = `aiaas.rpc ${method}`;
  return () => {
    const started = performance.now();
    const span = tracing ? tracer.startSpan(spanName) : undefined;
    let ended = false;
    return (code) => {
      if (ended) return;
      ended = true;
      const attributes = attributesOf(code);
      instruments.rpcCount.add(1, attributes);
      instruments.rpcDuration.record(performance.now() - started, attributes);
      if (!span) return;
      if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: attributes.code });
      span.setAttribute("rpc.grpc.status_code", code);
      span.end();
    };
  };
}
