import type { Metadata, ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { Readable } from "node:stream";
import { onAbort } from "../common/abort-listeners.js";
import type { SurfaceCall } from "./call-context.js";
import { callMessages } from "./call-messages.js";
import { MalformedRequest, endedMidMessage } from "./request-decoding.js";

/** The status a stream ends with when it fails. */
export interface CallStatus {
  readonly code: number;
  readonly details: string;
  readonly metadata?: Metadata;
}

/**
 * A streaming call as the stream adapters (handlers.ts) drive it, whichever transport carries it: grpc-js's
 * call (below), or the lean stream transport (stream-call.ts).
 */
export interface StreamTransport<Res> extends SurfaceCall {
  /**
   * The call's requests, each decoded (a MalformedRequest for bytes that are not the message) and passed
   * through `check` as it is handed out. A half-close in the middle of a message, or a message the transport
   * refuses (too large, badly compressed), fails the iteration with the error to end the call with.
   */
  requests<Req>(check: (message: unknown) => Req): AsyncIterableIterator<Req>;
  /** Sends one response. False when the client reads slower than the handler writes: wait for `drained`. May throw the ServerError to end the call with (a response that cannot be sent). */
  write(response: Res): boolean;
  /** Resolves when written responses have gone out, or the signal aborts. */
  drained(signal: AbortSignal): Promise<void>;
  /** Ends the call OK after the responses written. */
  end(): void;
  /** Ends the call with a status; later ends are ignored. */
  fail(status: CallStatus): void;
}

// grpc-js streams signal backpressure after 16 messages; waiting that early costs more than it saves, so the
// adapter waits for "drain" only when a slow reader lets responses pile up.
const MAX_BUFFERED_RESPONSES = 1024;

type GrpcJsCall<Res> = ServerDuplexStream<unknown, Res> | ServerWritableStream<unknown, Res>;

/** grpc-js's server call as a StreamTransport (and the console's in-process calls, which have its surface). */
export class GrpcJsStream<Res> implements StreamTransport<Res> {
  readonly metadata: Metadata;

  constructor(
    private readonly call: GrpcJsCall<Res>,
    private readonly method: string,
  ) {
    this.metadata = call.metadata;
  }

  getDeadline(): ReturnType<SurfaceCall["getDeadline"]> {
    return this.call.getDeadline();
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  on(event: "cancelled", listener: (reason?: unknown) => void): this {
    this.call.on(event, listener);
    return this;
  }

  removeListener(event: "cancelled", listener: (reason?: unknown) => void): this {
    this.call.removeListener(event, listener);
    return this;
  }

  requests<Req>(check: (message: unknown) => Req): AsyncIterableIterator<Req> {
    const call = this.call;
    return callMessages(call as Readable, check, () => {
      if (endedMidMessage(call)) throw midMessage(this.method);
    });
  }

  write(response: Res): boolean {
    this.call.write(response);
    return this.call.writableLength < MAX_BUFFERED_RESPONSES;
  }

  drained(signal: AbortSignal): Promise<void> {
    const call = this.call;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        call.removeListener("drain", done);
        unsubscribe();
        resolve();
      };
      const unsubscribe = onAbort(signal, done);
      call.once("drain", done);
    });
  }

  end(): void {
    this.call.end();
  }

  fail(status: CallStatus): void {
    // grpc-js ends a call with the status emitted as its "error".
    this.call.emit("error", status);
  }
}

/** The INVALID_ARGUMENT of a stream half-closed in the middle of a message. */
export function midMessage(method: string): Error {
  return new MalformedRequest(method, "the stream was half-closed in the middle of a message: its length prefix promised more bytes than came").toError();
}
