import type { PredictStreamResponse } from "./gen/aiaas/v1/inference.js";
import { TensorEncoding } from "./gen/aiaas/v1/tensor.js";
import { AiaasError, Code } from "./errors.js";
import { createAsyncQueue } from "./internal/async-queue.js";
import type { OpenPredictCall } from "./internal/predict-calls.js";
import { tensorFromWire, tensorToWire, type Tensor } from "./tensor.js";

/** One request on a prediction stream. */
export interface StreamRequest {
  readonly model: string;
  readonly inputs: Readonly<Record<string, Tensor>>;
  /** Matches the result to this request; generated when absent. */
  readonly id?: string;
  readonly version?: string;
  readonly outputs?: readonly string[];
  /** This request's own deadline, from when the server receives it. */
  readonly timeoutMs?: number;
}

/** The answer to one request on a stream: its outputs, or its own error (the stream goes on). */
export type StreamResult =
  | { readonly ok: true; readonly id: string; readonly model: string; readonly version: string; readonly outputs: Record<string, Tensor> }
  | { readonly ok: false; readonly id: string; readonly error: AiaasError };

/**
 * A bidirectional prediction stream: `send()` requests, iterate results as they finish (in any order,
 * matched by id), `end()` when done sending. Iteration ends when every answer has arrived; it throws an
 * AiaasError if the stream itself fails or is cancelled.
 */
export interface PredictStream extends AsyncIterable<StreamResult> {
  /** Queues a request; returns its id. */
  send(request: StreamRequest): string;
  /** No more requests; results still arrive. */
  end(): void;
  /** Stops the stream at once; iteration throws CANCELLED. */
  cancel(): void;
}

export function openPredictStream(openCall: OpenPredictCall, signal?: AbortSignal): PredictStream {
  const results = createAsyncQueue<StreamResult>();
  let seq = 0;
  let cancelled = false;
  const call = openCall({
    message(response) {
      const result = resultOf(response);
      if (result) results.push(result);
    },
    closed(error) {
      signal?.removeEventListener("abort", cancel);
      if (cancelled) return;
      if (error) results.fail(error);
      else results.close();
    },
  });
  function cancel(): void {
    if (cancelled) return;
    cancelled = true;
    call.cancel();
    results.fail(signal?.reason instanceof AiaasError ? signal.reason : new AiaasError(Code.CANCELLED, "the prediction stream was cancelled"));
  }
  if (signal?.aborted) queueMicrotask(cancel);
  signal?.addEventListener("abort", cancel, { once: true });
  return {
    send(request) {
      const id = request.id ?? `s${seq++}`;
      call.write({
        model: request.model,
        version: request.version ?? "",
        id,
        inputs: Object.entries(request.inputs).map(([name, t]) => tensorToWire(name, t)),
        outputs: [...(request.outputs ?? [])],
        outputEncoding: TensorEncoding.TENSOR_ENCODING_RAW,
        timeoutMs: request.timeoutMs ?? 0,
      });
      return id;
    },
    end() {
      call.end();
    },
    cancel,
    [Symbol.asyncIterator]: () => results[Symbol.asyncIterator](),
  };
}

function resultOf(response: PredictStreamResponse): StreamResult | undefined {
  const r = response.result;
  if (r?.$case === "response") {
    const outputs: Record<string, Tensor> = {};
    for (const t of r.value.outputs) outputs[t.name] = tensorFromWire(t);
    return { ok: true, id: r.value.id, model: r.value.model, version: r.value.version, outputs };
  }
  if (r?.$case === "error") return { ok: false, id: r.value.id, error: new AiaasError(r.value.code as Code, r.value.message) };
  return undefined; // neither: nothing to report
}
