import type { Http2Server, Http2Session, IncomingHttpHeaders } from "node:http2";
import type { Server } from "@grpc/grpc-js";

const hooked = new WeakSet<object>();

/** Puts back the repeats of `authorization` that Node's HTTP/2 layer dropped, so the authenticator sees them. */
function onStream(_stream: unknown, headers: IncomingHttpHeaders, _flags: number, raw: string[]): void {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === "authorization") count++;
  if (count > 1) (headers as Record<string, unknown>).authorization = raw.filter((_, i) => i % 2 === 1 && raw[i - 1] === "authorization");
}

/**
 * Node's HTTP/2 layer keeps only the first of repeated single-value headers such as `authorization` and
 * drops the rest silently, so a request with two keys would be judged by the first alone, while a proxy in
 * front may have judged it by another. This hooks every HTTP/2 session of the grpc-js server (its
 * `http2Servers`, which grpc-js 1.x keeps per listener and injector) ahead of grpc-js, so the repeats reach
 * the call's metadata and the call is refused. The duplicate-header test fails if a grpc-js upgrade moves it.
 */
export function restoreDuplicateHeaders(server: Server): void {
  const servers = (server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  for (const http2 of servers?.keys() ?? []) {
    if (hooked.has(http2)) continue;
    hooked.add(http2);
    http2.prependListener("session", (session: Http2Session) => {
      session.prependListener("stream", onStream as never);
    });
  }
}
