import {
  Metadata,
  type ServerDuplexStream,
  type ServerWritableStream,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type sendUnaryData,
  type ServerUnaryCall,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { onAbort } from "../common/abort-listeners.js";
import { Code } from "../common/errors.js";
import { createCallContext, type CallContext } from "./call-context.js";
import { publicError } from "./error-mapping.js";
import { composeMiddleware, type CallEnd, type CallInfo, type Middleware } from "./middleware/index.js";
import { checkDecoded, type MalformedRequest } from "./request-decoding.js";
import { GrpcJsStream, type StreamTransport } from "./stream-transport.js";

/** What every handler adapter needs from the server. */
export interface HandlerEnv {
  readonly logger: Logger;
  /** Aborts when a graceful shutdown begins. */
  readonly serverStopping: AbortSignal;
  /** Every call passes through these, in order, before its handler (authentication, roles, quotas, telemetry). */
  readonly middleware: readonly Middleware[];
}

/** The status a client sees for anything thrown: the code at the edge, internal text kept in the log. */
export function toStatus(error: unknown, logger: Logger, method: string): { code: Code; details: string; metadata?: Metadata } {
  const e = publicError(error, logger, method);
  if (e.retryAfterMs === undefined) return { code: e.code, details: e.message };
  const metadata = new Metadata();
  metadata.set("retry-after-ms", String(e.retryAfterMs));
  return { code: e.code, details: e.message, metadata };
}

const noEnd: CallEnd = () => undefined;

/** A unary handler written as an async function of (request, context). */
export function unary<Req, Res>(env: HandlerEnv, info: CallInfo, handler: (request: Req, context: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
  const { logger, serverStopping } = env;
  const enter = composeMiddleware(env.middleware, info);
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const context = createCallContext(call, serverStopping);
    let end = noEnd;
    const fail = (error: unknown): void => {
      const status = toStatus(error, logger, info.method);
      end(status.code, error);
      context.dispose();
      callback(status);
    };
    try {
      end = enter(context);
      handler(checkDecoded(call.request), context).then((response) => {
        end(Code.OK);
        context.dispose();
        callback(null, response);
      }, fail);
    } catch (error) {
      fail(error);
    }
  };
}

/** What serves one call of a streaming method on a StreamTransport (the lean transport hands its calls here). */
export type StreamEntry = (call: StreamTransport<never>) => void;

const streamEntries = new WeakMap<object, StreamEntry>();

/** The entry of a bidi method's grpc-js handler made by `bidi`, for the lean stream transport; undefined for any other handler. */
export function streamEntryOf(handler: unknown): StreamEntry | undefined {
  return typeof handler === "function" ? streamEntries.get(handler) : undefined;
}

/**
 * A bidirectional handler written as an async generator: it reads requests as an AsyncIterable and yields
 * responses; the adapter honours the transport's backpressure and ends the call with the right status. The
 * grpc-js handler it returns has a StreamEntry (streamEntryOf) serving the same calls on the lean transport.
 */
export function bidi<Req, Res>(
  env: HandlerEnv,
  info: CallInfo,
  handler: (requests: AsyncIterable<Req>, context: CallContext) => AsyncIterable<Res>,
): handleBidiStreamingCall<Req, Res> {
  const enter = composeMiddleware(env.middleware, info);
  const serve = (call: StreamTransport<Res>): void => {
    void respond(env, info, enter, call, (context) => handler(checkedRequests(context, call), context));
  };
  const grpcJs: handleBidiStreamingCall<Req, Res> = (call) => serve(new GrpcJsStream(call as ServerDuplexStream<unknown, Res>, info.method));
  streamEntries.set(grpcJs, serve as StreamEntry);
  return grpcJs;
}

/** A server-streaming handler written as an async generator of responses for one request. */
export function serverStream<Req, Res>(
  env: HandlerEnv,
  info: CallInfo,
  handler: (request: Req, context: CallContext) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  const enter = composeMiddleware(env.middleware, info);
  return (call: ServerWritableStream<Req, Res>) => {
    const request = call.request;
    void respond(env, info, enter, new GrpcJsStream(call as ServerWritableStream<unknown, Res>, info.method), (context) => handler(checkDecoded(request), context));
  };
}

/** Writes a stream's responses as the handler yields them, then ends the call with its status. */
async function respond<Res>(
  env: HandlerEnv,
  info: CallInfo,
  enter: (context: CallContext) => CallEnd,
  call: StreamTransport<Res>,
  responses: (context: CallContext) => AsyncIterable<Res>,
): Promise<void> {
  const context = createCallContext(call, env.serverStopping, true);
  let end = noEnd;
  let code: number = Code.OK;
  let failure: unknown;
  let statusSent = false;
  const sendStatus = (error: unknown): void => {
    const status = toStatus(error, env.logger, info.method);
    code = status.code;
    failure = error;
    if (statusSent) return;
    statusSent = true;
    call.fail(status);
  };
  // Ended by the server (the key was revoked): the status goes out now, even while the handler waits for a message.
  const unsubscribe = onAbort(context.signal, () => {
    if (context.terminated) sendStatus(context.terminated);
  });
  try {
    end = enter(context);
    for await (const response of responses(context)) {
      if (context.signal.aborted) break;
      if (!call.write(response)) await call.drained(context.signal);
    }
    if (!context.signal.aborted) call.end();
  } catch (error) {
    if (!context.signal.aborted) sendStatus(error);
    else if (!context.terminated) {
      code = toStatus(error, env.logger, info.method).code;
      failure = error;
    }
  } finally {
    unsubscribe();
    if (context.signal.aborted && code === Code.OK) code = (context.signal.reason as { code?: number } | undefined)?.code ?? Code.CANCELLED;
    end(code, failure);
    context.dispose();
  }
}

/**
 * A stream's requests as the handler sees them: each passes the context's per-message check (the key's
 * revocation), and a message that is not valid protobuf, or a half-close in the middle of a message, ends the
 * stream with INVALID_ARGUMENT.
 */
function checkedRequests<Req>(context: CallContext, call: StreamTransport<unknown>): AsyncIterable<Req> {
  return call.requests((message) => {
    context.checkMessage();
    return checkDecoded(message as Req | MalformedRequest);
  });
}
