// How a serving session runs on the thread that holds it (a session worker, or the main thread's inline
// session): on onnxruntime-node's native binding at once where it has the shape this project knows
// (native-session.ts), else through the public InferenceSession, whose run() waits for a setImmediate first.
// AIAAS_ORT_NATIVE_RUN=0 in the server's environment keeps every session on the public API: the operator's
// way out should an onnxruntime-node upgrade keep the binding's shape but change what it does.
import ort from "onnxruntime-node";
import { openNativeSession } from "./native-session.js";
import type { ValueSpec } from "./worker-protocol.js";

export interface SessionRunner {
  /** Whether run() has its outputs before it returns (no turn of the event loop): the native binding runs it. */
  readonly now: boolean;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** All outputs when `outputs` is empty. */
  run(feeds: Record<string, ort.Tensor>, outputs: readonly string[]): Record<string, ort.Tensor> | Promise<Record<string, ort.Tensor>>;
  release(): void | Promise<void>;
}

/** Opens `modelPath` with options made by sessionOptions(); throws if the model cannot open with them. */
export async function openSessionRunner(modelPath: string, options: ort.InferenceSession.SessionOptions): Promise<SessionRunner> {
  const native = process.env.AIAAS_ORT_NATIVE_RUN === "0" ? undefined : openNativeSession(modelPath, options);
  if (native) {
    return { now: true, inputs: native.inputs, outputs: native.outputs, run: (feeds, outputs) => native.run(feeds, outputs), release: () => native.release() };
  }
  const session = await ort.InferenceSession.create(modelPath, options);
  return {
    now: false,
    inputs: session.inputMetadata.map(spec),
    outputs: session.outputMetadata.map(spec),
    run: (feeds, outputs) => (outputs.length ? session.run(feeds, [...outputs]) : session.run(feeds)),
    release: () => session.release(),
  };
}

function spec(meta: ort.InferenceSession.ValueMetadata): ValueSpec {
  if (!meta.isTensor) return { name: meta.name, type: "non-tensor", dims: [], isTensor: false };
  return { name: meta.name, type: meta.type, dims: meta.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)), isTensor: true };
}
