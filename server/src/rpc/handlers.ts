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
import { Metadata } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Authenticator, Role } from "../auth/index.js";
import { onAbort } from "../common/abort-listeners.js";
import { Code, ServerError } from "../common/errors.js";
import { createCallContext, type CallContext } from "./call-context.js";
import { MalformedRequest, checkDecoded, endedMidMessage } from "./request-decoding.js";
import { roleOf } from "./method-roles.js";
import { callObserver } from "./call-observer.js";

/** What every handler wrapper needs from the server. */
export interface HandlerEnv {
  readonly logger: Logger;
  /** Aborts when a graceful shutdown begins. */
  readonly serverStopping: AbortSignal;
  /** Resolves and checks each call's API key; absent: every call is the operator's (tests, embedding). */
  readonly auth?: Authenticator;
}

/**
 * The interceptor of every wrapped call: resolves the caller from its key once, checks the method's role,
 * rate and in-flight limits, and puts the caller in the context. Returns the release of the in-flight slot.
 */
function admit(env: HandlerEnv, method: string, role: Role, context: CallContext): () => void {
  const auth = env.auth;
  if (!auth) return noop;
  const caller = auth.authorize(context.metadata.get("authorization"), method, role, context.peer);
  context.caller = caller;
  if (caller.tenant !== undefined) context.fairnessKey = caller.tenant;
  if (!context.streaming) auth.quotas.takeRequest(caller);
  else context.takeToken = () => auth.quotas.takeRequest(caller);
  return auth.quotas.enter(caller);
}

/**
 * A stream's requests as the handler sees them: each re-checked against revocation, and a message that is not
 * valid protobuf, or a half-close in the middle of a message, ends the stream with INVALID_ARGUMENT.
 */
async function* checkedRequests<Req>(env: HandlerEnv, method: string, context: CallContext, call: ServerDuplexStream<Req, unknown>): AsyncGenerator<Req> {
  // Iterating a Duplex destroys it when its readable side ends, which would drop the responses still
  // to come; keep it open.
  const raw = call.iterator({ destroyOnReturn: false }) as AsyncIterable<Req | MalformedRequest>;
  for await (const request of raw) {
    env.auth?.recheck(context.caller, method, context.peer);
    yield checkDecoded(request);
  }
  if (endedMidMessage(call)) {
    throw new MalformedRequest(method, "the stream was half-closed in the middle of a message: its length prefix promised more bytes than came").toError();
  }
}

const noop = (): void => undefined;

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
export function toStatus(error: unknown, logger: Logger, method: string): { code: status; details: string; metadata?: Metadata } {
  const e = ServerError.from(error);
  if (e.code === status.INTERNAL) logger.error({ err: error, method }, `internal error in ${method}`);
  if (e.retryAfterMs === undefined) return { code: e.code, details: e.message };
  const metadata = new Metadata();
  metadata.set("retry-after-ms", String(e.retryAfterMs));
  return { code: e.code, details: e.message, metadata };
}

/** A unary handler written as an async function of (request, context). */
export function unary<Req, Res>(
  env: HandlerEnv,
  method: string,
  handler: (request: Req, context: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  const { logger, serverStopping } = env;
  const role = roleOf(method);
  const observe = callObserver(method);
  return (call: ServerUnaryCall<Req, Res>, unobserved: sendUnaryData<Res>) => {
    const done = observe();
    const callback: sendUnaryData<Res> = (error, value) => {
      done(error ? (error as { code?: number }).code ?? Code.UNKNOWN : Code.OK);
      unobserved(error, value);
    };
    const { context, dispose } = createCallContext(call, serverStopping);
    let release = noop;
    try {
      release = admit(env, method, role, context);
    } catch (error) {
      dispose();
      callback(toStatus(error, logger, method));
      return;
    }
    let request: Req;
    try {
      request = checkDecoded(call.request);
    } catch (error) {
      release();
      dispose();
      callback(toStatus(error, logger, method));
      return;
    }
    handler(request, context).then(
      (response) => {
        release();
        dispose();
        callback(null, response);
      },
      (error) => {
        release();
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
  env: HandlerEnv,
  method: string,
  handler: (requests: AsyncIterable<Req>, context: CallContext) => AsyncIterable<Res>,
): handleBidiStreamingCall<Req, Res> {
  const { logger, serverStopping } = env;
  const role = roleOf(method);
  const observe = callObserver(method);
  return (call: ServerDuplexStream<Req, Res>) => {
    const done = observe();
    let code: number = Code.OK;
    const { context, dispose } = createCallContext(call, serverStopping, true);
    let release = noop;
    void (async () => {
      try {
        release = admit(env, method, role, context);
        for await (const response of handler(checkedRequests(env, method, context, call), context)) {
          if (context.signal.aborted) break;
          call.write(response);
          // grpc-js streams signal backpressure after 16 messages; waiting that early costs more than it saves,
          // so wait for "drain" only when a slow reader lets responses pile up.
          if (call.writableLength >= MAX_BUFFERED_RESPONSES) await drained(call, context.signal);
        }
        if (!context.signal.aborted) call.end();
      } catch (error) {
        const status = toStatus(error, logger, method);
        code = status.code;
        if (!context.signal.aborted) call.emit("error", status);
      } finally {
        if (context.signal.aborted && code === Code.OK) code = (context.signal.reason as { code?: number } | undefined)?.code ?? Code.CANCELLED;
        done(code);
        release();
        dispose();
      }
    })();
  };
}

/** A server-streaming handler written as an async generator of responses for one request. */
export function serverStream<Req, Res>(
  env: HandlerEnv,
  method: string,
  handler: (request: Req, context: CallContext) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  const { logger, serverStopping } = env;
  const role = roleOf(method);
  const observe = callObserver(method);
  return (call: ServerWritableStream<Req, Res>) => {
    const done = observe();
    let code: number = Code.OK;
    const { context, dispose } = createCallContext(call, serverStopping, true);
    let release = noop;
    void (async () => {
      try {
        release = admit(env, method, role, context);
        for await (const response of handler(checkDecoded(call.request), context)) {
          if (context.signal.aborted) break;
          call.write(response);
          if (call.writableLength >= MAX_BUFFERED_RESPONSES) await drained(call, context.signal);
        }
        if (!context.signal.aborted) call.end();
      } catch (error) {
        const status = toStatus(error, logger, method);
        code = status.code;
        if (!context.signal.aborted) call.emit("error", status);
      } finally {
        if (context.signal.aborted && code === Code.OK) code = (context.signal.reason as { code?: number } | undefined)?.code ?? Code.CANCELLED;
        done(code);
        release();
        dispose();
      }
    })();
  };
}
