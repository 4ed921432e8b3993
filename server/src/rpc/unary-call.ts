// One unary gRPC call served straight on its HTTP/2 stream. grpc-js builds, per call, an intercepting call,
// a listener chain, a Duplex, a frame decoder, a read queue, Metadata objects for the reply and a status
// object, and writes the trailers a turn after the message: about half the CPU of an echo call under load
// (a grpc-js echo server: ~110 µs per call at 256 in flight; the same echo on node:http2 alone: ~55). A
// unary call needs one message in and one out, so it is read, answered and closed here, and handed to the
// same handler grpc-js would call (handlers.ts `unary`), which sees the same call surface.
import { status as Status, type Metadata, type handleUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { OK_TRAILERS, PREFIX, REPLY_HEADERS, WAIT_FOR_TRAILERS, decompress, framed, trailersOnly, type CancelReason, type MessageLimits } from "./grpc-wire.js";
import { LeanCall } from "./lean-call.js";
import { MalformedRequest } from "./request-decoding.js";

/** A unary method as routed here: the same codecs and handler its grpc-js registration has. */
export interface UnaryMethod {
  readonly path: string;
  readonly name: string;
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly serialize: (value: never) => Buffer;
  readonly handle: handleUnaryCall<never, never>;
}

/**
 * The call: reads the request's one length-prefixed message, runs the handler, writes the reply with its
 * trailers in one go. It answers every way a call can go wrong with the status grpc-js would (or a more
 * precise one: a message cut short is INVALID_ARGUMENT), and tells the handler, through "cancelled", when
 * the client goes away or the deadline passes first.
 */
export class UnaryCall extends LeanCall {
  request: unknown;
  private parts: Buffer[] = [];
  private received = 0;
  // The message's length from its prefix; -1 until the prefix has come.
  private length = -1;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly method: UnaryMethod,
    private readonly limits: MessageLimits,
  ) {
    super(stream, headers);
    const encoding = headers["grpc-encoding"];
    stream.on("data", (chunk: Buffer) => this.take(chunk));
    stream.once("end", () => void this.complete(typeof encoding === "string" ? encoding : "identity"));
    this.startDeadline(headers);
  }

  // --- reading ---

  private take(chunk: Buffer): void {
    if (this.finished) return;
    this.parts.push(chunk);
    this.received += chunk.length;
    if (this.length < 0 && this.received >= PREFIX) {
      const head = this.parts.length === 1 ? chunk : Buffer.concat(this.parts);
      this.length = head.readUInt32BE(1);
      const max = this.limits.maxReceiveBytes;
      if (max !== -1 && this.length > max) {
        this.fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${this.length} vs. ${max})`);
        return;
      }
    }
    if (this.length >= 0 && this.received > PREFIX + this.length) {
      this.fail(Status.UNIMPLEMENTED, `Received a second request message for unary method ${this.method.path}`);
    }
  }

  /** The client half-closed: the message is whole (or the call fails), and the handler runs. */
  private async complete(encoding: string): Promise<void> {
    if (this.finished) return;
    if (this.received === 0) {
      this.fail(Status.UNIMPLEMENTED, `Received no request message for unary method ${this.method.path}`);
      return;
    }
    if (this.length < 0 || this.received < PREFIX + this.length) {
      const cut = new MalformedRequest(this.method.name, "the request ended in the middle of a message: its length prefix promised more bytes than came");
      this.fail(Status.INVALID_ARGUMENT, cut.toError().message);
      return;
    }
    const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    let bytes = frame.subarray(PREFIX);
    if (frame[0] === 1) {
      try {
        bytes = await decompress(bytes, encoding, this.limits.maxReceiveBytes);
      } catch (error) {
        const e = error as { code: number; message: string };
        this.fail(e.code, e.message);
        return;
      }
      if (this.finished) return;
    }
    this.run(bytes);
  }

  private run(bytes: Buffer): void {
    try {
      this.request = this.method.deserialize(bytes);
    } catch {
      this.fail(Status.INTERNAL, "Error deserializing request");
      return;
    }
    try {
      this.method.handle(this as never, this.reply as sendUnaryData<never>);
    } catch {
      this.fail(Status.UNKNOWN, "Unknown error");
    }
  }

  // --- answering ---

  /** The handler's callback, as grpc-js's: an error (a status object) or the response. */
  private readonly reply = (error: unknown, value?: unknown, trailer?: Metadata): void => {
    if (this.finished) return;
    if (error) {
      const e = error as { code?: unknown; details?: unknown; message?: unknown; metadata?: Metadata };
      const code = typeof e.code === "number" && Number.isInteger(e.code) ? e.code : Status.UNKNOWN;
      const details = code === e.code && typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : "Unknown Error";
      this.fail(code, details, trailer ?? e.metadata);
      return;
    }
    let message: Buffer;
    try {
      message = this.method.serialize(value as never);
    } catch {
      this.fail(Status.INTERNAL, "Error serializing response");
      return;
    }
    const max = this.limits.maxSendBytes;
    if (max !== -1 && message.length > max) {
      this.fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${message.length + PREFIX} vs. ${max})`);
      return;
    }
    this.send(message, trailer);
  };

  private send(message: Buffer, trailer: Metadata | undefined): void {
    this.finish();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const frame = framed(message);
    const trailers = trailer ? { ...OK_TRAILERS, ...trailer.toHttp2Headers() } : OK_TRAILERS;
    try {
      stream.respond(REPLY_HEADERS, WAIT_FOR_TRAILERS);
      stream.once("wantTrailers", () => {
        try {
          stream.sendTrailers(trailers);
        } catch {
          // the stream went meanwhile
        }
      });
      stream.end(frame);
    } catch {
      // The session closed under the reply (a shutdown, a reset): there is no one left to answer.
    }
  }

  /** Ends the call with a status and no message (a trailers-only reply); the handler learns of it. */
  private fail(code: number, details: string, metadata?: Metadata, reason: CancelReason = "cancelled"): void {
    if (this.finished) return;
    this.finish();
    trailersOnly(this.stream, code, details, metadata);
    this.notify(reason);
  }

  protected abort(code: number, details: string, reason: CancelReason): void {
    this.fail(code, details, undefined, reason);
  }

  protected override finish(): void {
    super.finish();
    // Unread bytes flow on, so the stream can close.
    this.parts = [];
  }
}
