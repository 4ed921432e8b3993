import {
  status,
  type ServerDuplexStream,
  type ServerWritableStream,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type sendUnaryData,
  type ServerUnaryCall,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { onAbort } from "../abort-listeners.js";
import { ServerError } from "../errors.js";
import { createCallContext, type CallContext } from "./call-context.js";

/** What every handler wrapper needs from the server. */
export interface HandlerEnv {
  readonly logger: Logger;
  /** Aborts when a graceful shutdown begins. */
  readonly serverStopping: AbortSignal;
}

const MAX_BUFFERED_RESPONSES = 1024;

function drained(call: ServerDuplexStream<unknown, unknown> | ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
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

/** Turns anything thrown into the status a client sees; unexpected errors are logged, never leaked. */
export function toStatus(error: unknown, logger: Logger, method: string): { code: status; details: string } {
  const e = ServerError.from(error);
  if (e.code === status.INTERNAL) logger.error({ err: error, method }, `internal error in ${method}`);
  return { code: e.code, details: e.message };
}

/** A unary handler written as an async function of (request, context). */
export function unary<Req, Res>(
  { logger, serverStopping }: HandlerEnv,
  method: string,
  handler: (request: Req, context: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const { context, dispose } = createCallContext(call, serverStopping);
    handler(call.request, context).then(
      (response) => {
        dispose();
        callback(null, response);
      },
      (error) => {
        dispose();
        callback(toStatus(error, logger, method));
      },
    );
  };
}

/**
 * A bidirectional handler written as an async generator: it reads requests as an AsyncIterable and yields
 * responses; the adapter honours the transport's backpressure and ends the call with the right status.
 */
export function bidi<Req, Res>(
  { logger, serverStopping }: HandlerEnv,
  method: string,
  handler: (requests: AsyncIterable<Req>, context: CallContext) => AsyncIterable<Res>,
): handleBidiStreamingCall<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>) => {
    const { context, dispose } = createCallContext(call, serverStopping, true);
    void (async () => {
      try {
        // Iterating a Duplex destroys it when its readable side ends, which would drop the responses still
        // to come; keep it open.
        const requests = call.iterator({ destroyOnReturn: false }) as AsyncIterable<Req>;
        for await (const response of handler(requests, context)) {
          if (context.signal.aborted) break;
          call.write(response);
          // grpc-js streams signal backpressure after 16 messages; waiting that early costs more than it saves,
          // so wait for "drain" only when a slow reader lets responses pile up.
          if (call.writableLength >= MAX_BUFFERED_RESPONSES) await drained(call, context.signal);
        }
        if (!context.signal.aborted) call.end();
      } catch (error) {
        if (!context.signal.aborted) call.emit("error", toStatus(error, logger, method));
      } finally {
        dispose();
      }
    })();
  };
}

/** A server-streaming handler written as an async generator of responses for one request. */
export function serverStream<Req, Res>(
  { logger, serverStopping }: HandlerEnv,
  method: string,
  handler: (request: Req, context: CallContext) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const { context, dispose } = createCallContext(call, serverStopping, true);
    void (async () => {
      try {
        for await (const response of handler(call.request, context)) {
          if (context.signal.aborted) break;
          call.write(response);
          if (call.writableLength >= MAX_BUFFERED_RESPONSES) await drained(call, context.signal);
        }
        if (!context.signal.aborted) call.end();
      } catch (error) {
        if (!context.signal.aborted) call.emit("error", toStatus(error, logger, method));
      } finally {
        dispose();
      }
    })();
  };
}
