// What the lean transports (unary-call.ts, stream-call.ts) say and read on an HTTP/2 stream, as grpc-js would,
// so a client sees the same call whichever carries it.
import { Metadata, status as Status } from "@grpc/grpc-js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { gunzip, inflate, type ZlibOptions } from "node:zlib";
import { ServerError, type Code } from "../common/errors.js";

/** Message size limits in bytes, as grpc-js takes them (-1: none). */
export interface MessageLimits {
  readonly maxReceiveBytes: number;
  readonly maxSendBytes: number;
}

/** Why a call's handler is told it was cancelled (grpc-js always says "cancelled"). */
export type CancelReason = "cancelled" | "deadline";

export const REPLY_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
  "grpc-encoding": "identity",
} as const;
export const OK_TRAILERS = { "grpc-status": "0", "grpc-message": "OK" } as const;
export const WAIT_FOR_TRAILERS = { waitForTrailers: true } as const;
export const PREFIX = 5;

const END_STREAM = { endStream: true } as const;
const DEADLINE = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const MAX_TIMER_MS = 2 ** 31 - 1;
// Request headers that are the transport's, not the application's metadata (as grpc-js removes them).
const TRANSPORT_HEADERS = ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "accept-encoding", "te", "content-type"];

/** The call's metadata: its headers less the transport's own. */
export function callMetadata(headers: IncomingHttpHeaders): Metadata {
  const metadata = Metadata.fromHttp2Headers(headers);
  for (const name of TRANSPORT_HEADERS) metadata.remove(name);
  return metadata;
}

/**
 * A grpc-timeout header in ms: undefined when it is longer than a timer can wait (2^31 - 1 ms, ~24.8 days,
 * as good as none); NaN when it is not a timeout at all.
 */
export function timeoutMs(value: string): number | undefined {
  const match = DEADLINE.exec(value);
  if (!match) return NaN;
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  return ms > MAX_TIMER_MS ? undefined : ms;
}

/** The peer's address as grpc-js words it. */
export function peerOf(stream: ServerHttp2Stream): string {
  const socket = stream.session?.socket;
  if (!socket?.remoteAddress) return "unknown";
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
}

/** One message with its 5-byte prefix, uncompressed. */
export function framed(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(message.length + PREFIX);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, PREFIX);
  return frame;
}

/** The status trailers (or trailers-only headers' status part) of a call ending with `code`. */
export function statusHeaders(code: number, details: string, metadata?: Metadata): Record<string, string | string[]> {
  return { "grpc-status": String(code), "grpc-message": encodeURI(details), ...metadata?.toHttp2Headers() } as Record<string, string | string[]>;
}

/** Ends a call that has sent nothing yet with its status alone (a trailers-only response). */
export function trailersOnly(stream: ServerHttp2Stream, code: number, details: string, metadata?: Metadata): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...statusHeaders(code, details, metadata) }, END_STREAM);
  } catch {
    // The session closed under the reply (a shutdown, a reset): there is no one left to answer.
  }
}

/** A compressed message's bytes, inflated; throws the ServerError (with grpc-js's words) the call ends with. */
export async function decompress(bytes: Buffer, encoding: string, maxBytes: number): Promise<Buffer> {
  // A client's bytes that do not inflate are its own error: INVALID_ARGUMENT (grpc-js says INTERNAL).
  if (encoding === "identity") throw wireError(Status.INVALID_ARGUMENT, `Received compressed message but "grpc-encoding" header was identity`);
  if (encoding !== "gzip" && encoding !== "deflate") throw wireError(Status.UNIMPLEMENTED, `Received message compressed with unsupported encoding "${encoding}"`);
  const options: ZlibOptions = maxBytes === -1 ? {} : { maxOutputLength: maxBytes };
  try {
    return await new Promise<Buffer>((resolve, reject) => (encoding === "gzip" ? gunzip : inflate)(bytes, options, (e, out) => (e ? reject(e) : resolve(out))));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw wireError(Status.RESOURCE_EXHAUSTED, `Received message that decompresses to a size larger than ${maxBytes}`);
    }
    throw wireError(Status.INVALID_ARGUMENT, "Failed to decompress message");
  }
}

/** An error of the transport's own, with grpc-js's words, to end a call with. */
export function wireError(code: number, details: string): ServerError {
  return new ServerError(code as Code, details);
}
