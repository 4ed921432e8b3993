import type { Deadline, Metadata } from "@grpc/grpc-js";
import { setMaxListeners } from "node:events";
import { abortOwned, onAbort, ownedController } from "../common/abort-listeners.js";
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

/** The parts of a server call (grpc-js's, unary or streaming, or the lean transports') a context needs. */
export interface SurfaceCall {
  readonly metadata: Metadata;
  getDeadline(): Deadline;
  getPeer(): string;
  on(event: "cancelled", listener: (reason?: unknown) => void): unknown;
  removeListener(event: "cancelled", listener: (reason?: unknown) => void): unknown;
}

/** One call's context; `dispose` clears its timer and listener when the call ends. */
class Context implements CallContext {
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly metadata: Metadata;
  readonly peer: string;
  caller: Caller = LOCAL_CALLER;
  fairnessKey: string;
  takeToken = noop;
  checkMessage = noop;
  terminated: ServerError | undefined = undefined;
  private readonly controller = ownedController();
  private readonly timer: NodeJS.Timeout | undefined;
  // The lean unary transport says when the deadline passed (grpc-js's calls always say "cancelled").
  private readonly onCancel = (reason?: unknown): void =>
    abortOwned(this.controller, reason === "deadline" ? deadlineExceeded("the call's deadline passed") : cancelled("the client cancelled the call"));

  constructor(
    private readonly call: SurfaceCall,
    readonly serverStopping: AbortSignal,
    readonly streaming: boolean,
  ) {
    this.signal = this.controller.signal;
    this.peer = call.getPeer();
    this.fairnessKey = `connection ${this.peer}`;
    this.metadata = call.metadata;
    // Every request of a stream may listen to its call's signal.
    if (streaming) setMaxListeners(0, this.signal);
    call.on("cancelled", this.onCancel);
    const raw = call.getDeadline();
    const epoch = raw instanceof Date ? raw.getTime() : raw;
    if (Number.isFinite(epoch)) {
      const remaining = epoch - Date.now();
      this.deadline = performance.now() + remaining;
      this.timer = setTimeout(() => abortOwned(this.controller, deadlineExceeded("the call's deadline passed")), Math.max(0, remaining));
    } else this.deadline = Infinity;
  }

  terminate(error: ServerError): void {
    if (this.signal.aborted) return;
    this.terminated = error;
    abortOwned(this.controller, error);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.call.removeListener("cancelled", this.onCancel);
  }
}

/** Builds the context of one call; its `dispose` clears its timer when the call ends. */
export function createCallContext(call: SurfaceCall, serverStopping: AbortSignal, streaming = false): CallContext & { dispose(): void } {
  return new Context(call, serverStopping, streaming);
}

const noop = (): void => undefined;

/** A per-request scope inside a call: the call's signal plus an optional server-side timeout. */
export function withTimeout(context: CallContext, timeoutMs: number): { signal: AbortSignal; deadline: number; dispose(): void } {
  if (!(timeoutMs > 0)) return { signal: context.signal, deadline: context.deadline, dispose: noop };
  const deadline = Math.min(context.deadline, performance.now() + timeoutMs);
  if (deadline === context.deadline) return { signal: context.signal, deadline, dispose: noop };
  const controller = ownedController();
  const unsubscribe = onAbort(context.signal, () => abortOwned(controller, context.signal.reason));
  const timer = setTimeout(
    () => abortOwned(controller, deadlineExceeded(`the request's timeout of ${timeoutMs} ms passed (its timeout_ms or the model's default_timeout_ms)`)),
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
