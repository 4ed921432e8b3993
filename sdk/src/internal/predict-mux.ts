import type { PredictRequest, PredictResponse } from "../gen/aiaas/v1/inference.js";
import { AiaasError, Code } from "../errors.js";
import { DeadlineSweeper, type Expiring } from "./deadline-sweeper.js";
import type { OpenPredictCall, PredictCall } from "./predict-calls.js";

/**
 * Carries unary-looking predict calls over one shared PredictStream. A unary call costs the client far more
 * CPU than a message on an open stream, so overlapping calls ride the stream (grpc-js's, or one on the SDK's
 * own HTTP/2 connection: predict-calls.ts); each keeps its own deadline (sent as timeout_ms and enforced
 * here), cancellation and error. The stream opens on demand and closes after a quiet spell of `idleMs`:
 * short, because an open stream keeps the client's process alive (a script that never calls close() exits
 * that long after its last call), and reopening costs about one unary call.
 */
export interface PredictMux {
  predict(request: PredictRequest, deadline: number, signal: AbortSignal | undefined): Promise<PredictResponse>;
  close(): void;
}

export function createPredictMux(openCall: OpenPredictCall, idleMs = 100): PredictMux {
  return new SharedStreamMux(openCall, idleMs);
}

class SharedStreamMux implements PredictMux {
  private stream: PredictCall | undefined;
  private readonly pending = new Map<string, PendingCall>();
  private seq = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly deadlines = new DeadlineSweeper(() => this.pending.values());

  constructor(
    private readonly openCall: OpenPredictCall,
    private readonly idleMs: number,
  ) {}

  predict(request: PredictRequest, deadline: number, signal: AbortSignal | undefined): Promise<PredictResponse> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    const s = (this.stream ??= this.open());
    const id = `mux-${this.seq++}`;
    const remaining = Math.max(1, Math.ceil(deadline - Date.now()));
    return new Promise<PredictResponse>((resolve, reject) => {
      this.pending.set(id, new PendingCall(this, id, s, deadline, remaining, signal, resolve, reject));
      this.deadlines.arm(deadline);
      const { model, version, inputs, outputs, outputEncoding } = request;
      s.write({ model, version, id, inputs, outputs, outputEncoding, timeoutMs: remaining } satisfies PredictRequest);
    });
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.deadlines.disarm();
    this.stream?.end();
    this.stream = undefined;
  }

  /** Takes a call out of those waiting for an answer; false when it was no longer waiting. */
  release(id: string): boolean {
    if (!this.pending.delete(id)) return false;
    if (this.pending.size === 0) {
      this.deadlines.disarm();
      this.scheduleIdle();
    }
    return true;
  }

  private open(): PredictCall {
    const s: PredictCall = this.openCall({
      message: (response) => {
        const result = response.result;
        const p = result && this.pending.get(result.value.id);
        if (!p || !this.release(p.id)) return; // timed out or cancelled meanwhile
        if (result.$case === "response") p.resolve(result.value);
        else p.reject(new AiaasError(result.value.code as Code, result.value.message));
      },
      closed: (error) => this.fail(s, error ?? new AiaasError(Code.UNAVAILABLE, "the shared prediction stream ended; retry")),
      // The server is going away: new calls take a new stream (on a new connection); this one finishes its own.
      draining: () => {
        if (this.stream !== s) return;
        this.stream = undefined;
        s.end();
      },
    });
    return s;
  }

  private fail(s: PredictCall, error: AiaasError): void {
    if (this.stream === s) this.stream = undefined;
    for (const p of [...this.pending.values()]) if (p.stream === s && this.release(p.id)) p.reject(error);
  }

  private scheduleIdle(): void {
    if (this.pending.size > 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.pending.size === 0 && this.stream) {
        const s = this.stream;
        this.stream = undefined;
        s.end();
      }
    }, this.idleMs);
    this.idleTimer.unref();
  }
}

/** One call waiting for its answer: its deadline and its signal (an object listener, no closure per call). */
class PendingCall implements Expiring {
  constructor(
    private readonly mux: SharedStreamMux,
    readonly id: string,
    readonly stream: PredictCall,
    readonly deadline: number,
    private readonly remaining: number,
    private readonly signal: AbortSignal | undefined,
    private readonly onAnswer: (response: PredictResponse) => void,
    private readonly onError: (error: AiaasError) => void,
  ) {
    signal?.addEventListener("abort", this, { once: true });
  }

  resolve(response: PredictResponse): void {
    this.signal?.removeEventListener("abort", this);
    this.onAnswer(response);
  }

  reject(error: AiaasError): void {
    this.signal?.removeEventListener("abort", this);
    this.onError(error);
  }

  expire(): void {
    if (this.mux.release(this.id)) this.reject(new AiaasError(Code.DEADLINE_EXCEEDED, `no answer within ${this.remaining} ms`));
  }

  /** The signal's abort. */
  handleEvent(): void {
    if (this.mux.release(this.id)) this.reject(abortError(this.signal!));
  }
}

function abortError(signal: AbortSignal): AiaasError {
  return signal.reason instanceof AiaasError ? signal.reason : new AiaasError(Code.CANCELLED, "the call was cancelled");
}
