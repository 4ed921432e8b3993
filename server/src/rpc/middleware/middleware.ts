import type { Role } from "../../auth/index.js";
import { ServerError } from "../../common/errors.js";
import type { CallContext } from "../call-context.js";

/** What a middleware knows of the method it wraps. */
export interface CallInfo {
  /** The method's name, e.g. "Predict". */
  readonly method: string;
  /** The role the method needs, declared beside its handler. */
  readonly role: Role;
  /** Whether the call is a stream (its messages are requests of their own). */
  readonly streaming: boolean;
}

/** What runs when a call ends: its status code and, when it failed, what it failed with. */
export type CallEnd = (code: number, error?: unknown) => void;

/**
 * One step every RPC passes through before its handler, in the order the server lists them (as nice-grpc's
 * ServerMiddleware, but as enter/end hooks rather than generators wrapping each response, so a unary call on
 * the hot path pays no extra promise per step). `forMethod` runs once per method when the services are built
 * (per-method state such as telemetry attributes is made there); the function it returns runs once per call:
 * it may refuse the call by throwing, extend the context (the caller, its fairness key, a per-message check,
 * a rate token per streamed request) and return what to do when the call ends.
 */
export interface Middleware {
  readonly name: string;
  forMethod(call: CallInfo): (context: CallContext) => CallEnd | void;
}

const noEnd: CallEnd = () => undefined;

/**
 * The middleware of one method composed: the returned function enters each step in order and gives back the
 * call's end, which runs the steps' ends in reverse order, once. When a step refuses the call, the steps
 * already entered end with its code before the error goes on.
 */
export function composeMiddleware(middleware: readonly Middleware[], call: CallInfo): (context: CallContext) => CallEnd {
  const steps = middleware.map((m) => m.forMethod(call));
  return (context) => {
    const ends: CallEnd[] = [];
    let ended = false;
    const end: CallEnd = (code, error) => {
      if (ended) return;
      ended = true;
      for (let i = ends.length - 1; i >= 0; i--) ends[i]!(code, error);
    };
    try {
      for (const step of steps) {
        const stepEnd = step(context);
        if (stepEnd) ends.push(stepEnd);
      }
    } catch (error) {
      end(ServerError.from(error).code, error);
      throw error;
    }
    return ends.length === 0 ? noEnd : end;
  };
}
