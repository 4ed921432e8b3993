import type { Server } from "@grpc/grpc-js";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { UnaryCall, type UnaryLimits, type UnaryMethod } from "./unary-call.js";

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => void;

/** The parts of a grpc-js 1.x server this reads: its HTTP/2 servers, and its count of a connection's open streams. */
interface GrpcJsInternals {
  readonly http2Servers?: Map<Http2Server, unknown>;
  onStreamOpened?(stream: ServerHttp2Stream): void;
}

const routed = new WeakSet<object>();

/**
 * Serves the unary methods in `methods` (by path) on the grpc-js server's HTTP/2 streams directly
 * (unary-call.ts); every other stream (streams, health, reflection, an unknown path, a request that is not
 * gRPC) goes to grpc-js as before. Connections, TLS, keepalive, idle and age limits and graceful shutdown
 * stay grpc-js's: they are the session's, and a routed stream is still one of its streams, counted as open
 * for the idle timeout. Call it once the server has its HTTP/2 servers (after createConnectionInjector).
 * Reads grpc-js 1.x internals (`http2Servers`, `onStreamOpened`); the unary transport test fails if an
 * upgrade moves them.
 */
export function routeUnaryCalls(server: Server, methods: ReadonlyMap<string, UnaryMethod>, limits: UnaryLimits): void {
  const internals = server as unknown as GrpcJsInternals;
  for (const http2 of internals.http2Servers?.keys() ?? []) {
    if (routed.has(http2)) continue;
    routed.add(http2);
    const grpcJs = http2.listeners("stream") as StreamListener[];
    http2.removeAllListeners("stream");
    http2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      const method = methods.get(headers[":path"] as string);
      const type = headers["content-type"];
      if (method && typeof type === "string" && type.startsWith("application/grpc")) {
        internals.onStreamOpened?.(stream);
        new UnaryCall(stream, headers, method, limits);
        return;
      }
      for (const listener of grpcJs) listener.call(http2, stream, headers, flags, raw);
    });
  }
}
