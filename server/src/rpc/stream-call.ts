// One bidirectional gRPC call served straight on its HTTP/2 stream. grpc-js carries each message of a stream
// through a frame decoder, an object-mode Duplex on each side, a read queue and a write callback; here a
// message is cut from the bytes as they come (MessageFrames, from @aiaas/sdk/wire), decoded when the handler takes it, and its
// answer framed and written with the others of the same turn in one write (cork until the next tick). The
// handler is the same stream adapter (handlers.ts `bidi`) grpc-js's call is handed to, through StreamTransport.
import { status as Status, type Metadata } from "@grpc/grpc-js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { MessageFrames } from "@aiaas/sdk/wire";
import { onAbort } from "../common/abort-listeners.js";
import { cancelled, deadlineExceeded, type ServerError } from "../common/errors.js";
import { OK_TRAILERS, REPLY_HEADERS, WAIT_FOR_TRAILERS, decompress, framed, statusHeaders, trailersOnly, wireError, type CancelReason, type MessageLimits } from "./grpc-wire.js";
import { LeanCall } from "./lean-call.js";
import { midMessage, type CallStatus, type StreamTransport } from "./stream-transport.js";

/** A bidirectional method as routed here: its codecs, and the adapter that serves a call on a StreamTransport. */
export interface StreamMethod {
  readonly path: string;
  readonly name: string;
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly serialize: (value: never) => Buffer;
  readonly handle: (call: StreamTransport<never>) => void;
}

// Requests read ahead of the handler before the stream stops reading (HTTP/2 flow control then holds the
// client back), by count and by bytes; reading resumes once the handler has taken them below half.
const READ_AHEAD_MESSAGES = 32;
const READ_AHEAD_BYTES = 4 << 20;
// Responses buffered for a slow reader before the writer waits for "drain" (about grpc-js's adapter's 1024
// messages of a small answer; a byte count bounds the memory whatever the answers' size).
const MAX_BUFFERED_BYTES = 128 << 10;

/**
 * The call. Requests are read ahead a little and handed out in order (a compressed one inflated on the way);
 * responses go out as the handler writes them, headers before the first; the call ends with trailers, or
 * with a trailers-only status when nothing was sent. When the client goes away or the deadline passes, the
 * handler hears "cancelled" (with the reason) and the requests end.
 */
export class StreamCall extends LeanCall implements StreamTransport<unknown> {
  private trailers: Record<string, string | string[]> = OK_TRAILERS;
  private corked = false;
  private readonly frames: MessageFrames;
  private readonly encoding: string;
  private readonly requestQueue = new RequestQueue(this);

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly method: StreamMethod,
    private readonly limits: MessageLimits,
  ) {
    super(stream, headers);
    const encoding = headers["grpc-encoding"];
    this.encoding = typeof encoding === "string" ? encoding : "identity";
    this.frames = new MessageFrames(limits.maxReceiveBytes, (compressed, payload) => this.message(compressed, payload));
    stream.on("data", (chunk: Buffer) => this.take(chunk));
    stream.once("end", () => this.requestQueue.end(this.frames.midMessage ? { error: midMessage(method.name) } : undefined));
    this.startDeadline(headers);
  }

  /** Whether the call has ended already (a grpc-timeout that does not parse ends it before any handler runs). */
  get ended(): boolean {
    return this.finished;
  }

  // --- reading ---

  requests<Req>(check: (message: unknown) => Req): AsyncIterableIterator<Req> {
    return this.requestQueue.iterate(this.method.deserialize, check);
  }

  /** Stops or resumes reading the client's bytes (flow control), as the handler falls behind or catches up. */
  pause(paused: boolean): void {
    if (paused) this.stream.pause();
    else this.stream.resume();
  }

  private take(chunk: Buffer): void {
    if (this.requestQueue.closed) return;
    const over = this.frames.read(chunk);
    if (over >= 0) {
      this.requestQueue.end({ error: wireError(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${over} vs. ${this.limits.maxReceiveBytes})`) });
    }
  }

  private message(compressed: boolean, payload: Buffer): void {
    if (this.requestQueue.closed) return;
    if (!compressed) this.requestQueue.push(payload, payload.length);
    else {
      const inflated = decompress(payload, this.encoding, this.limits.maxReceiveBytes);
      // The failure is the iteration's, in its turn; nothing after it is read.
      inflated.catch((error: unknown) => this.requestQueue.end({ error }));
      this.requestQueue.push(inflated, payload.length);
    }
  }

  // --- writing ---

  write(response: unknown): boolean {
    if (this.finished) return true;
    let message: Buffer;
    try {
      message = this.method.serialize(response as never);
    } catch {
      throw wireError(Status.INTERNAL, "Error serializing response");
    }
    const max = this.limits.maxSendBytes;
    if (max !== -1 && message.length > max) throw wireError(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${message.length} vs. ${max})`);
    const stream = this.stream;
    try {
      if (!stream.headersSent) this.sendHeaders();
      // Responses of one turn (a batch's answers) leave in one write.
      if (!this.corked) {
        this.corked = true;
        stream.cork();
        process.nextTick(this.uncork);
      }
      stream.write(framed(message));
    } catch {
      // The session closed under the write: "close" ends the call.
    }
    return stream.writableLength < MAX_BUFFERED_BYTES;
  }

  drained(signal: AbortSignal): Promise<void> {
    const stream = this.stream;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        stream.removeListener("drain", done);
        stream.removeListener("close", done);
        unsubscribe();
        resolve();
      };
      const unsubscribe = onAbort(signal, done);
      stream.once("drain", done);
      stream.once("close", done);
    });
  }

  end(): void {
    this.close(Status.OK, "OK");
  }

  fail(status: CallStatus): void {
    this.close(status.code, status.details, status.metadata);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.stream.uncork();
  };

  private sendHeaders(): void {
    this.stream.respond(REPLY_HEADERS, WAIT_FOR_TRAILERS);
    this.stream.once("wantTrailers", () => {
      try {
        this.stream.sendTrailers(this.trailers);
      } catch {
        // the stream went meanwhile
      }
    });
  }

  // --- ending ---

  /** Sends the status: in the trailers after what was written, or alone when nothing was. */
  private close(code: number, details: string, metadata?: Metadata, ending?: ServerError): void {
    if (this.finished) return;
    this.finish(ending);
    const stream = this.stream;
    if (!stream.headersSent) {
      trailersOnly(stream, code, details, metadata);
      return;
    }
    if (code !== Status.OK || metadata) this.trailers = statusHeaders(code, details, metadata);
    try {
      stream.end();
    } catch {
      // as in write()
    }
  }

  protected abort(code: number, details: string, reason: CancelReason): void {
    if (this.finished) return;
    this.close(code, details, undefined, reason === "deadline" ? deadlineExceeded("the call's deadline passed") : cancelled("the call was cancelled"));
    this.notify(reason);
  }

  /**
   * A reader still iterating the requests gets `ending` (the call was cut short) or their end (the handler
   * itself ended the call); bytes still coming flow on, so the stream can close.
   */
  protected override finish(ending?: ServerError): void {
    super.finish();
    this.requestQueue.end(ending ? { error: ending } : undefined);
    this.stream.resume();
  }
}

/**
 * The requests read and not yet taken, in order, for the one reader: each a payload or a payload being
 * inflated. The stream pauses while too many wait. `end` marks the last: cleanly, or with the error the
 * iteration fails with once the requests before it are taken.
 */
class RequestQueue {
  private readonly items: (Buffer | Promise<Buffer>)[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  private paused = false;
  private ended: { readonly error?: unknown } | undefined;
  private done = false;
  private wake: (() => void) | undefined;

  constructor(private readonly call: StreamCall) {}

  /** No more requests are taken in (the client half-closed, an error, or the call ended). */
  get closed(): boolean {
    return this.ended !== undefined;
  }

  push(item: Buffer | Promise<Buffer>, size: number): void {
    this.items.push(item);
    this.sizes.push(size);
    this.bytes += size;
    if (!this.paused && (this.items.length - this.head >= READ_AHEAD_MESSAGES || this.bytes >= READ_AHEAD_BYTES)) {
      this.paused = true;
      this.call.pause(true);
    }
    this.notify();
  }

  end(how?: { readonly error?: unknown }): void {
    this.ended ??= how ?? {};
    this.notify();
  }

  iterate<Req>(deserialize: (bytes: Buffer) => unknown, check: (message: unknown) => Req): AsyncIterableIterator<Req> {
    const next = async (): Promise<IteratorResult<Req>> => {
      while (!this.done) {
        const item = this.take();
        if (item !== undefined) {
          try {
            return { done: false, value: check(deserialize(item instanceof Promise ? await item : item)) };
          } catch (error) {
            this.done = true;
            throw error;
          }
        }
        const ended = this.ended;
        if (ended) {
          this.done = true;
          if (ended.error !== undefined) throw ended.error;
          break;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<Req> = {
      next,
      return: () => {
        // The reader stopped: what else comes is dropped, and the stream reads on so it can close.
        this.done = true;
        this.end();
        this.call.pause(false);
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private take(): Buffer | Promise<Buffer> | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.bytes -= this.sizes[this.head]!;
    this.items[this.head] = undefined as never;
    this.head++;
    if (this.head === this.items.length) {
      this.items.length = this.sizes.length = this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    if (this.paused && this.items.length - this.head <= READ_AHEAD_MESSAGES / 2 && this.bytes <= READ_AHEAD_BYTES / 2) {
      this.paused = false;
      this.call.pause(false);
    }
    return item;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
