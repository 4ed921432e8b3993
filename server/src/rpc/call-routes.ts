import type { MethodDefinition, Server } from "@grpc/grpc-js";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { MessageLimits } from "./grpc-wire.js";
import { streamEntryOf } from "./handlers.js";
import { methodName } from "./request-decoding.js";
import { StreamCall, type StreamMethod } from "./stream-call.js";
import { UnaryCall, type UnaryMethod } from "./unary-call.js";

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => void;

/** A method the lean transports serve, by its kind. */
export type Route = { readonly kind: "unary"; readonly method: UnaryMethod } | { readonly kind: "stream"; readonly method: StreamMethod };

/** How the lean transports serve a method: unary ones, and bidi ones the stream adapter made; undefined for the rest. */
export function leanRoute(m: MethodDefinition<unknown, unknown>, handler: unknown): Route | undefined {
  const codecs = { path: m.path, name: methodName(m.path), deserialize: m.requestDeserialize, serialize: m.responseSerialize as (value: never) => Buffer };
  if (!m.requestStream && !m.responseStream) return { kind: "unary", method: { ...codecs, handle: handler as UnaryMethod["handle"] } };
  const entry = m.requestStream && m.responseStream ? streamEntryOf(handler) : undefined;
  return entry && { kind: "stream", method: { ...codecs, handle: entry } };
}

/** The parts of a grpc-js 1.x server this reads: its HTTP/2 servers, and its count of a connection's open streams. */
interface GrpcJsInternals {
  readonly http2Servers?: Map<Http2Server, unknown>;
  onStreamOpened?(stream: ServerHttp2Stream): void;
}

const routed = new WeakSet<object>();

/**
 * Serves the methods in `routes` (by path) on the grpc-js server's HTTP/2 streams directly: unary ones with
 * unary-call.ts, bidirectional ones with stream-call.ts. Every other stream (server streams, health,
 * reflection, an unknown path, a request that is not gRPC) goes to grpc-js as before. Connections, TLS,
 * keepalive, idle and age limits and graceful shutdown stay grpc-js's: they are the session's, and a routed
 * stream is still one of its streams, counted as open for the idle timeout. Call it once the server has its
 * HTTP/2 servers (after createConnectionInjector). Reads grpc-js 1.x internals (`http2Servers`,
 * `onStreamOpened`); the transport tests fail if an upgrade moves them.
 */
export function routeCalls(server: Server, routes: ReadonlyMap<string, Route>, limits: MessageLimits): void {
  const internals = server as unknown as GrpcJsInternals;
  for (const http2 of internals.http2Servers?.keys() ?? []) {
    if (routed.has(http2)) continue;
    routed.add(http2);
    const grpcJs = http2.listeners("stream") as StreamListener[];
    http2.removeAllListeners("stream");
    http2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      const route = routes.get(headers[":path"] as string);
      const type = headers["content-type"];
      if (route && typeof type === "string" && type.startsWith("application/grpc")) {
        internals.onStreamOpened?.(stream);
        if (route.kind === "unary") {
          new UnaryCall(stream, headers, route.method, limits);
          return;
        }
        const call = new StreamCall(stream, headers, route.method, limits);
        if (!call.ended) route.method.handle(call as never);
        return;
      }
      for (const listener of grpcJs) listener.call(http2, stream, headers, flags, raw);
    });
  }
}
