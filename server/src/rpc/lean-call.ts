import { status as Status, type Metadata } from "@grpc/grpc-js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { cancelled, type ServerError } from "../common/errors.js";
import { callMetadata, peerOf, timeoutMs, type CancelReason } from "./grpc-wire.js";

const ignore = (): void => undefined;

/**
 * What a call of the lean transports (unary-call.ts, stream-call.ts) is besides its messages: the surface the
 * call context reads (metadata, deadline, peer, "cancelled" with its reason), the grpc-timeout's timer, and
 * the end when the stream closes before a status went out. A subclass says how the transport ends the call
 * (`abort`) and what else ends with it (`finish`).
 */
export abstract class LeanCall {
  readonly metadata: Metadata;
  /** The status has gone out (or the stream went): nothing more is read or written. */
  protected finished = false;
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private cancelListeners: ((reason: CancelReason) => void)[] | undefined;

  constructor(
    protected readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
  ) {
    stream.on("error", ignore);
    stream.once("close", () => this.gone());
    this.metadata = callMetadata(headers);
  }

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

  /** The transport ends the call with a status (the deadline passed, a bad grpc-timeout), and the handler hears why. */
  protected abstract abort(code: number, details: string, reason: CancelReason): void;

  /** Nothing more is read or written; `ending` is why, when the call was cut short. Subclasses end their own parts too. */
  protected finish(_ending?: ServerError): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Starts the deadline the grpc-timeout header asks for. Called by the subclass once its fields are set: it may abort at once. */
  protected startDeadline(headers: IncomingHttpHeaders): void {
    const header = headers["grpc-timeout"];
    if (header === undefined) return;
    const value = String(header);
    const ms = timeoutMs(value);
    if (Number.isNaN(ms)) {
      this.abort(Status.INTERNAL, `Invalid grpc-timeout value "${value}"`, "cancelled");
      return;
    }
    if (ms === undefined) return;
    this.deadline = Date.now() + ms;
    this.timer = setTimeout(() => this.abort(Status.DEADLINE_EXCEEDED, "Deadline exceeded", "deadline"), ms);
  }

  /** Tells the handler the call ended under it, and why. */
  protected notify(reason: CancelReason): void {
    const listeners = this.cancelListeners;
    this.cancelListeners = undefined;
    if (listeners) for (const listener of listeners) listener(reason);
  }

  /** The stream closed before a status went out: the client cancelled, or the connection went. */
  private gone(): void {
    if (this.finished) return;
    this.finish(cancelled("the client cancelled the call"));
    this.notify("cancelled");
  }
}
