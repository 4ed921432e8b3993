import { Metadata, type ClientDuplexStream } from "@grpc/grpc-js";
import type { InferenceClient, PredictRequest, PredictResponse, PredictStreamResponse } from "../gen/aiaas/v1/inference.js";
import { AiaasError, Code } from "../errors.js";
import { DeadlineSweeper, type Expiring } from "./deadline-sweeper.js";

/**
 * Carries unary-looking predict calls over one shared PredictStream. A grpc-js unary call costs the client
 * far more CPU than a message on an open stream, so overlapping calls ride the stream; each keeps its own
 * deadline (sent as timeout_ms and enforced here), cancellation and error. The stream opens on demand and
 * closes after a quiet spell of `idleMs`: short, because an open stream keeps the client's process alive (a
 * script that never calls close() exits that long after its last call), and reopening costs about one
 * unary call.
 */
export interface PredictMux {
  predict(request: PredictRequest, deadline: number, signal: AbortSignal | undefined): Promise<PredictResponse>;
  close(): void;
}

interface Pending extends Expiring {
  readonly stream: ClientDuplexStream<PredictRequest, PredictStreamResponse>;
  resolve(response: PredictResponse): void;
  reject(error: AiaasError): void;
}

export function createPredictMux(client: InferenceClient, metadata: () => Metadata, idleMs = 100): PredictMux {
  let stream: ClientDuplexStream<PredictRequest, PredictStreamResponse> | undefined;
  const pending = new Map<string, Pending>();
  let seq = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const deadlines = new DeadlineSweeper(() => pending.values());
  const disarmIfIdle = (): void => {
    if (pending.size === 0) deadlines.disarm();
  };

  const failStream = (s: ClientDuplexStream<PredictRequest, PredictStreamResponse>, error: AiaasError): void => {
    if (stream === s) stream = undefined;
    for (const [id, p] of pending) {
      if (p.stream !== s) continue;
      pending.delete(id);
      p.reject(error);
    }
    disarmIfIdle();
  };

  const open = (): ClientDuplexStream<PredictRequest, PredictStreamResponse> => {
    const s = client.predictStream(metadata());
    s.on("data", (response: PredictStreamResponse) => {
      const result = response.result;
      if (!result) return;
      const p = pending.get(result.value.id);
      if (!p) return; // timed out or cancelled meanwhile
      pending.delete(result.value.id);
      if (result.$case === "response") p.resolve(result.value);
      else p.reject(new AiaasError(result.value.code as Code, result.value.message));
      disarmIfIdle();
      scheduleIdle();
    });
    s.on("error", (error) => failStream(s, AiaasError.from(error)));
    s.on("end", () => failStream(s, new AiaasError(Code.UNAVAILABLE, "the shared prediction stream ended; retry")));
    return s;
  };

  const scheduleIdle = (): void => {
    if (pending.size > 0 || idleTimer) return;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (pending.size === 0 && stream) {
        const s = stream;
        stream = undefined;
        s.end();
      }
    }, idleMs);
    idleTimer.unref();
  };

  return {
    predict(request, deadline, signal) {
      if (signal?.aborted) return Promise.reject(AiaasError.from(signal.reason ?? new AiaasError(Code.CANCELLED, "the call was cancelled")));
      if (idleTimer) {
        clearTimeout(idleTimer);
        idleTimer = undefined;
      }
      stream ??= open();
      const s = stream;
      const id = `mux-${seq++}`;
      const remaining = Math.max(1, Math.ceil(deadline - Date.now()));
      return new Promise<PredictResponse>((resolve, reject) => {
        const onAbort = (): void => settleWith(signal!.reason instanceof AiaasError ? signal!.reason : new AiaasError(Code.CANCELLED, "the call was cancelled"));
        const settleWith = (error: AiaasError): void => {
          if (!pending.delete(id)) return;
          signal?.removeEventListener("abort", onAbort);
          reject(error);
          disarmIfIdle();
          scheduleIdle();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        pending.set(id, {
          stream: s,
          deadline,
          resolve: signal
            ? (response) => {
                signal.removeEventListener("abort", onAbort);
                resolve(response);
              }
            : resolve,
          reject: (error) => {
            signal?.removeEventListener("abort", onAbort);
            reject(error);
          },
          expire: () => settleWith(new AiaasError(Code.DEADLINE_EXCEEDED, `no answer within ${remaining} ms`)),
        });
        deadlines.arm(deadline);
        const { model, version, inputs, outputs, outputEncoding } = request;
        s.write({ model, version, id, inputs, outputs, outputEncoding, timeoutMs: remaining } satisfies PredictRequest);
      });
    },
    close() {
      if (idleTimer) clearTimeout(idleTimer);
      deadlines.disarm();
      stream?.end();
      stream = undefined;
    },
  };
}
