// One unary gRPC call served straight on its HTTP/2 stream. grpc-js builds, per call, an intercepting call,
// a listener chain, a Duplex, a frame decoder, a read queue, Metadata objects for the reply and a status
// object, and writes the trailers a turn after the message: about half the CPU of an echo call under load
// (a grpc-js echo server: ~110 µs per call at 256 in flight; the same echo on node:http2 alone: ~55). A
// unary call needs one message in and one out, so it is read, answered and closed here, and handed to the
// same handler grpc-js would call (handlers.ts `unary`), which sees the same call surface.
import { status as Status, type Metadata, type handleUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import {
  OK_TRAILERS,
  PREFIX,
  REPLY_HEADERS,
  WAIT_FOR_TRAILERS,
  callMetadata,
  decompress,
  framed,
  peerOf,
  timeoutMs,
  trailersOnly,
  type CancelReason,
  type MessageLimits,
} from "./grpc-wire.js";
import { MalformedRequest } from "./request-decoding.js";

/** A unary method as routed here: the same codecs and handler its grpc-js registration has. */
export interface UnaryMethod {
  readonly path: string;
  readonly name: string;
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly serialize: (value: never) => Buffer;
  readonly handle: handleUnaryCall<never, never>;
}

const ignore = (): void => undefined;

/**
 * The call: reads the request's one length-prefixed message, runs the handler, writes the reply with its
 * trailers in one go. It answers every way a call can go wrong with the status grpc-js would (or a more
 * precise one: a message cut short is INVALID_ARGUMENT), and tells the handler, through "cancelled", when
 * the client goes away or the deadline passes first.
 */
export class UnaryCall {
  request: unknown;
  readonly metadata: Metadata;
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private cancelListeners: ((reason: CancelReason) => void)[] | undefined;
  private finished = false;
  private parts: Buffer[] = [];
  private received = 0;
  // The message's length from its prefix; -1 until the prefix has come.
  private length = -1;

  constructor(
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly method: UnaryMethod,
    private readonly limits: MessageLimits,
  ) {
    stream.on("error", ignore);
    stream.once("close", () => this.gone());
    const encoding = headers["grpc-encoding"];
    stream.on("data", (chunk: Buffer) => this.take(chunk));
    stream.once("end", () => void this.complete(typeof encoding === "string" ? encoding : "identity"));
    this.metadata = callMetadata(headers);
    const timeout = headers["grpc-timeout"];
    if (timeout !== undefined) this.startDeadline(String(timeout));
  }

  // --- the call surface the handler adapter reads (grpc-js's ServerUnaryCall, in part) ---

  getDeadline(): number {
    return this.deadline;
  }

  getPeer(): string {
    return peerOf(this.stream);
  }

  /** The listener learns why: "deadline" when the deadline passed, "cancelled" otherwise. */
  on(_event: "cancelled", listener: (reason: CancelReason) => void): this {
    (this.cancelListeners ??= []).push(listener);
    return this;
  }

  removeListener(_event: "cancelled", listener: (reason: CancelReason) => void): this {
    const at = this.cancelListeners?.indexOf(listener) ?? -1;
    if (at >= 0) this.cancelListeners!.splice(at, 1);
    return this;
  }

  // --- reading ---

  private startDeadline(value: string): void {
    const ms = timeoutMs(value);
    if (Number.isNaN(ms)) {
      this.fail(Status.INTERNAL, `Invalid grpc-timeout value "${value}"`);
      return;
    }
    if (ms === undefined) return;
    this.deadline = Date.now() + ms;
    this.timer = setTimeout(() => this.fail(Status.DEADLINE_EXCEEDED, "Deadline exceeded", undefined, "deadline"), ms);
  }

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
    this.cancelled(reason);
  }

  /** The stream closed before a status went out: the client cancelled, or the connection went. */
  private gone(): void {
    if (this.finished) return;
    this.finish();
    this.cancelled("cancelled");
  }

  private finish(): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    // Unread bytes flow on, so the stream can close.
    this.parts = [];
  }

  private cancelled(reason: CancelReason): void {
    const listeners = this.cancelListeners;
    this.cancelListeners = undefined;
    if (listeners) for (const listener of listeners) listener(reason);
  }
}
