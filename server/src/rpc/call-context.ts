import type { Deadline, Metadata } from "@grpc/grpc-js";
import { setMaxListeners } from "node:events";
import { onAbort } from "../common/abort-listeners.js";
import { cancelled, deadlineExceeded, type ServerError } from "../common/errors.js";
import { LOCAL_CALLER, type Caller } from "../auth/index.js";

/** What every handler gets besides its request: cancellation and the deadline, as one AbortSignal. */
export interface CallContext {
  /** Aborts when the client cancels or the deadline passes; its reason is the ServerError to fail with. */
  readonly signal: AbortSignal;
  /** performance.now() time of the call's deadline; Infinity for none. */
  readonly deadline: number;
  readonly metadata: Metadata;
  readonly peer: string;
  /** Aborts when the server begins a graceful shutdown: long-lived streams wind down on it. */
  readonly serverStopping: AbortSignal;
  /** Who is calling: resolved once from the call's API key. */
  caller: Caller;
  /** Whose share of a model's queue this call's requests take: the caller's tenant, or its connection when there are none (auth off). */
  fairnessKey: string;
  /** Whether the call is a stream (its messages are requests of their own). */
  readonly streaming: boolean;
  /** Takes a request token of the caller's rate limit (for each message of a stream; unary calls took theirs). Call it as a method: it reads the call from `this`. */
  takeToken(this: CallContext): void;
  /** Runs before each further message of a stream (the authentication middleware re-checks the key there). Call it as a method. */
  checkMessage(this: CallContext): void;
  /** Ends the call from the server's side with `error`'s status (an open stream whose key was revoked meanwhile). */
  terminate(error: ServerError): void;
  /** The error `terminate` ended the call with. */
  readonly terminated: ServerError | undefined;
}

/** The parts of a grpc-js server call (unary or streaming) a context needs. */
interface SurfaceCall {
  readonly metadata: Metadata;
  getDeadline(): Deadline;
  getPeer(): string;
  on(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/** Builds the context of one call; `dispose` clears its timer when the call ends. */
export function createCallContext(call: SurfaceCall, serverStopping: AbortSignal, streaming = false): { context: CallContext; dispose(): void } {
  const controller = new AbortController();
  const peer = call.getPeer();
  // Every request of a stream may listen to its call's signal.
  if (streaming) setMaxListeners(0, controller.signal);
  const onCancel = (): void => controller.abort(cancelled("the client cancelled the call"));
  call.on("cancelled", onCancel);
  const raw = call.getDeadline();
  const epoch = raw instanceof Date ? raw.getTime() : raw;
  let deadline = Infinity;
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(epoch)) {
    const remaining = epoch - Date.now();
    deadline = performance.now() + remaining;
    timer = setTimeout(() => controller.abort(deadlineExceeded("the call's deadline passed")), Math.max(0, remaining));
  }
  let terminated: ServerError | undefined;
  return {
    context: {
      terminate(error) {
        if (controller.signal.aborted) return;
        terminated = error;
        controller.abort(error);
      },
      get terminated() {
        return terminated;
      },
      signal: controller.signal,
      deadline,
      metadata: call.metadata,
      peer,
      serverStopping,
      caller: LOCAL_CALLER,
      fairnessKey: `connection ${peer}`,
      streaming,
      takeToken: noop,
      checkMessage: noop,
    },
    dispose() {
      if (timer) clearTimeout(timer);
      call.removeListener("cancelled", onCancel);
    },
  };
}

const noop = (): void => undefined;

/** A per-request scope inside a call: the call's signal plus an optional server-side timeout. */
export function withTimeout(context: CallContext, timeoutMs: number): { signal: AbortSignal; deadline: number; dispose(): void } {
  if (!(timeoutMs > 0)) return { signal: context.signal, deadline: context.deadline, dispose: noop };
  const deadline = Math.min(context.deadline, performance.now() + timeoutMs);
  if (deadline === context.deadline) return { signal: context.signal, deadline, dispose: noop };
  const controller = new AbortController();
  const unsubscribe = onAbort(context.signal, () => controller.abort(context.signal.reason));
  const timer = setTimeout(
    () => controller.abort(deadlineExceeded(`the request's timeout of ${timeoutMs} ms passed (its timeout_ms or the model's default_timeout_ms)`)),
    deadline - performance.now(),
  );
  return {
    signal: controller.signal,
    deadline,
    dispose() {
      clearTimeout(timer);
      unsubscribe();
    },
  };
}
