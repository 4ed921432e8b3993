import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { gunzipSync, inflateSync } from "node:zlib";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Metadata } from "@grpc/grpc-js";
import { AiaasError, Code } from "../errors.js";
import { MessageFrames } from "../wire/message-frames.js";

export interface H2CallHandlers<Res> {
  message(response: Res): void;
  /** Called once, when the call is over: `undefined` when the server ended it with OK. */
  closed(error: AiaasError | undefined): void;
}

const PREFIX = new Uint8Array(5);
const USER_AGENT = "aiaas-sdk/0.1 (node:http2)";

/** The largest answer taken, as grpc-js's default channel in the SDK takes. */
export const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

/** The headers of a gRPC call to `path`. */
export function grpcRequestHeaders(path: string, apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", "user-agent": USER_AGENT };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

/**
 * Encodes messages straight behind their 5-byte gRPC prefix, with one writer kept across messages: a fresh
 * ts-proto writer grows from 128 bytes by doubling, a copy each time, for every message.
 */
export class FrameEncoder<T> {
  private writer = new BinaryWriter();

  constructor(private readonly encode: (message: T, writer: BinaryWriter) => BinaryWriter) {}

  frame(message: T): Uint8Array {
    let frame: Uint8Array;
    try {
      frame = this.encode(message, this.writer.raw(PREFIX)).finish();
    } catch (error) {
      this.writer = new BinaryWriter(); // left mid-message
      throw error;
    }
    new DataView(frame.buffer, frame.byteOffset).setUint32(1, frame.length - 5);
    return frame;
  }
}

/**
 * One bidirectional gRPC call on a stream of the SDK's own HTTP/2 connection (the server's answers are cut out
 * of the bytes as they come, as the server does with requests). grpc-js passes each message through a frame
 * decoder, object-mode streams on both sides and a write callback; here the writes of one turn go out in one
 * write (cork until the next tick).
 */
export class H2Call<Res> {
  private corked = false;
  private done = false;
  private encoding = "identity";
  private failure: Error | undefined;
  /** The status the trailers carried, applied once the answers before it are all read. */
  private trailed: { error: AiaasError | undefined } | undefined;
  private readonly frames: MessageFrames;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly session: ClientHttp2Session,
    private readonly decode: (bytes: Uint8Array) => Res,
    private readonly handlers: H2CallHandlers<Res>,
    private readonly maxReceiveBytes: number,
    private readonly server: string,
  ) {
    this.frames = new MessageFrames(maxReceiveBytes, this.onMessage);
    stream.on("response", this.onResponse);
    stream.on("data", this.onData);
    stream.on("trailers", (trailers: IncomingHttpHeaders) => (this.trailed = { error: statusOf(trailers) }));
    stream.on("end", () => this.trailed && this.finish(this.trailed.error, false));
    stream.on("error", (error: Error) => (this.failure ??= error));
    stream.on("close", this.onClose);
  }

  /** Sends a message already framed (FrameEncoder). */
  writeFrame(frame: Uint8Array): void {
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(this.uncork);
    }
    this.stream.write(frame);
  }

  /** Sends an encoded message: its prefix, then its bytes as they are (no copy into a frame). */
  writeMessage(payload: Uint8Array): void {
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(payload.length, 1);
    this.writeFrame(prefix);
    this.writeFrame(payload);
  }

  /** No more requests (the server answers those it has, then ends the call). */
  end(): void {
    if (!this.done && !this.stream.writableEnded) this.stream.end();
  }

  /** Ends the call at once with `error` (CANCELLED when absent): the server stops its work for it. */
  cancel(error = new AiaasError(Code.CANCELLED, "the call was cancelled")): void {
    this.finish(error, true);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.stream.uncork();
  };

  private readonly onResponse = (headers: IncomingHttpHeaders): void => {
    if (headers["grpc-status"] !== undefined) return this.finish(statusOf(headers), false); // trailers-only
    const status = Number(headers[":status"]);
    if (status !== 200) return this.finish(new AiaasError(httpStatusCode(status), `the server at ${this.server} answered HTTP ${status}, not gRPC`), true);
    if (!String(headers["content-type"] ?? "").startsWith("application/grpc")) {
      return this.finish(new AiaasError(Code.UNKNOWN, `the server at ${this.server} answered ${headers["content-type"] ?? "no content type"}, not gRPC`), true);
    }
    this.encoding = String(headers["grpc-encoding"] ?? "identity");
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    const over = this.frames.read(chunk);
    if (over !== -1) this.finish(new AiaasError(Code.RESOURCE_EXHAUSTED, `received message larger than max (${over} vs. ${this.maxReceiveBytes})`), true);
  };

  private readonly onMessage = (compressed: boolean, payload: Buffer): void => {
    if (this.done) return;
    let response: Res;
    try {
      response = this.decode(compressed ? inflate(this.encoding, payload) : payload);
    } catch (error) {
      return this.finish(new AiaasError(Code.INTERNAL, `could not read the server's message: ${(error as Error).message}`), true);
    }
    this.handlers.message(response);
  };

  private readonly onClose = (): void => {
    if (this.done) return;
    if (this.trailed) return this.finish(this.trailed.error, false);
    const failure = this.failure;
    if (this.session.destroyed || this.session.closed || (failure && !("code" in failure && failure.code === "ERR_HTTP2_STREAM_ERROR"))) {
      const why = failure ? `: ${failure.message}` : "";
      return this.finish(new AiaasError(Code.UNAVAILABLE, `the connection to ${this.server} failed or closed${why}`), false);
    }
    this.finish(resetStatus(this.stream.rstCode ?? constants.NGHTTP2_NO_ERROR), false);
  };

  /** Settles the call once; `reset` also cancels the stream (the server has not ended it). */
  private finish(error: AiaasError | undefined, reset: boolean): void {
    if (this.done) return;
    this.done = true;
    if (reset && !this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
    else if (!this.stream.writableEnded) this.stream.end();
    this.handlers.closed(error);
  }
}

function inflate(encoding: string, payload: Buffer): Buffer {
  if (encoding === "gzip") return gunzipSync(payload);
  if (encoding === "deflate") return inflateSync(payload);
  throw new Error(`a compressed message with grpc-encoding "${encoding}"`);
}

/** The status in trailers (or a trailers-only response's headers). */
function statusOf(headers: IncomingHttpHeaders): AiaasError | undefined {
  const code = Number(headers["grpc-status"]);
  if (code === Code.OK) return undefined;
  let details = String(headers["grpc-message"] ?? "");
  try {
    details = decodeURIComponent(details);
  } catch {
    // not percent-encoded after all: keep it as sent
  }
  const known = Number.isInteger(code) && code > 0 && code <= 16;
  return new AiaasError(known ? (code as Code) : Code.UNKNOWN, details || `the call ended with status ${headers["grpc-status"] ?? "(none)"}`, {
    metadata: Metadata.fromHttp2Headers(headers),
  });
}

/** gRPC's mapping of a stream reset before any status. */
function resetStatus(rstCode: number): AiaasError {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return new AiaasError(Code.UNAVAILABLE, "the server refused the stream; retry");
    case constants.NGHTTP2_CANCEL:
      return new AiaasError(Code.CANCELLED, "the server cancelled the call");
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return new AiaasError(Code.RESOURCE_EXHAUSTED, "the server reset the stream: bandwidth or memory limit exceeded");
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return new AiaasError(Code.PERMISSION_DENIED, "the server reset the stream: the connection's security is inadequate");
    default:
      return new AiaasError(Code.INTERNAL, `the stream ended without a gRPC status (HTTP/2 code ${rstCode})`);
  }
}

/** gRPC's mapping of an HTTP status that is not 200 (a proxy's answer, not a gRPC server's). */
function httpStatusCode(status: number): Code {
  if (status === 400) return Code.INTERNAL;
  if (status === 401) return Code.UNAUTHENTICATED;
  if (status === 403) return Code.PERMISSION_DENIED;
  if (status === 404) return Code.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Code.UNAVAILABLE;
  return Code.UNKNOWN;
}
