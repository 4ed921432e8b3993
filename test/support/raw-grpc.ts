// gRPC spoken by hand over node:http2, for clients that break the rules on purpose (a length prefix that
// lies, two messages on a unary call, a bad grpc-timeout): no gRPC library sends such calls.
import { connect as connectHttp2, type OutgoingHttpHeaders } from "node:http2";

/** A gRPC message frame: flag byte (1: compressed), 4-byte length (which may lie), payload. */
export function frame(payload: Uint8Array, length = payload.length, flag = 0): Buffer {
  const f = Buffer.alloc(5 + payload.length);
  f[0] = flag;
  f.writeUInt32BE(length, 1);
  Buffer.from(payload).copy(f, 5);
  return f;
}

export interface RawResult {
  readonly code: number | undefined;
  readonly message: string;
  readonly ms: number;
  /** Response messages received before the status. */
  readonly messages: number;
  /** The response messages' payloads. */
  readonly payloads: Buffer[];
  /** Whether the server sent GOAWAY on the connection before the call ended. */
  readonly goaway: boolean;
  /** The response's headers (with the status in them, for a trailers-only response). */
  readonly headers: Record<string, unknown>;
  /** The trailers, when the status came in trailers. */
  readonly trailers: Record<string, unknown> | undefined;
}

export interface RawCallOptions {
  readonly halfClose?: boolean;
  readonly limitMs?: number;
  /** More request headers (grpc-timeout, grpc-encoding). */
  readonly headers?: OutgoingHttpHeaders;
  /** Resets the stream this many ms after sending, instead of waiting for the status. */
  readonly cancelAfterMs?: number;
  /** Waits this many ms before each frame after the first (each then leaves in a DATA frame of its own). */
  readonly gapMs?: number;
}

/** Sends raw gRPC frames on one HTTP/2 stream and reads the status, giving up after `limitMs`. */
export async function rawCall(address: string, path: string, frames: Buffer[], options: RawCallOptions = {}): Promise<RawResult> {
  const session = connectHttp2(`http://${address}`);
  session.on("error", () => undefined);
  let goaway = false;
  session.on("goaway", () => (goaway = true));
  const started = performance.now();
  try {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...options.headers });
    stream.on("error", () => undefined);
    let bytes = Buffer.alloc(0);
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> | undefined;
    stream.on("data", (d: Buffer) => (bytes = Buffer.concat([bytes, d])));
    const ended = new Promise<{ code: number | undefined; message: string }>((resolve) => {
      stream.on("response", (h) => (headers = h));
      stream.on("trailers", (t) => {
        trailers = t;
        resolve({ code: Number(t["grpc-status"]), message: decodeURIComponent(String(t["grpc-message"] ?? "")) });
      });
      stream.on("end", () => resolve({ code: headers["grpc-status"] === undefined ? undefined : Number(headers["grpc-status"]), message: decodeURIComponent(String(headers["grpc-message"] ?? "")) }));
      stream.on("close", () => resolve({ code: undefined, message: "closed" }));
      setTimeout(() => resolve({ code: undefined, message: "still open" }), options.limitMs ?? 3000).unref();
      if (options.cancelAfterMs !== undefined) setTimeout(() => stream.close(), options.cancelAfterMs).unref();
    });
    void (async () => {
      for (const [i, f] of frames.entries()) {
        if (i > 0 && options.gapMs) await new Promise((resolve) => setTimeout(resolve, options.gapMs));
        if (stream.closed) return;
        stream.write(f);
      }
      if (options.halfClose) stream.end();
    })();
    const result = await ended;
    const payloads: Buffer[] = [];
    for (let at = 0; at + 5 <= bytes.length; at += 5 + bytes.readUInt32BE(at + 1)) payloads.push(bytes.subarray(at + 5, at + 5 + bytes.readUInt32BE(at + 1)));
    return { ...result, ms: performance.now() - started, messages: payloads.length, payloads, headers, trailers, goaway };
  } finally {
    session.destroy();
  }
}
