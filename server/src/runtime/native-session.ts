// onnxruntime-node's native session, run on the calling thread. The public InferenceSession.run() calls the
// same native run, but only after a setImmediate: one more turn of the event loop per run (~10 µs of CPU
// beside a model's run, and the turn's latency), and its wrapper's own ~10 µs more; a lone request pays both
// on the thread that runs it. The native binding is not onnxruntime-node's documented API, so it is taken
// only when it has the shape this file expects (the version package-lock.json pins has it); otherwise the
// caller keeps the public session.
import { createRequire } from "node:module";
import type ort from "onnxruntime-node";
import type { ValueSpec } from "./worker-protocol.js";

/** A session whose run() returns its outputs before it returns. */
export interface NativeSession {
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  run(feeds: Record<string, ort.Tensor>, outputs: readonly string[]): Record<string, ort.Tensor>;
  release(): void;
}

/** The binding's description of an input or output: an ONNX element type code, -1 for a symbolic dimension. */
interface RawMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type: number;
  readonly shape: readonly number[];
}

interface Binding {
  InferenceSession: new () => {
    loadModel(path: string, options: ort.InferenceSession.SessionOptions): void;
    readonly inputMetadata: readonly RawMetadata[];
    readonly outputMetadata: readonly RawMetadata[];
    run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor>;
    dispose(): void;
  };
}

/**
 * ONNX's TensorProto.DataType codes, as onnxruntime-node's public API names them. Written out, not taken from
 * onnx-buf's enum: importing onnx-buf costs each session worker ~70 ms at start-up.
 */
const ELEMENT_TYPES: Readonly<Record<number, string>> = {
  1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
  10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 21: "uint4", 22: "int4",
};

/** As the public API describes it; a type it does not know fails the open, as it fails there. */
function spec(m: RawMetadata): ValueSpec {
  if (!m.isTensor) return { name: m.name, type: "non-tensor", dims: [], isTensor: false };
  const type = ELEMENT_TYPES[m.type];
  if (type === undefined) throw new Error(`Unsupported data type: ${m.type}`);
  return { name: m.name, type, dims: m.shape.map((d) => (d >= 0 ? d : -1)), isTensor: true };
}

let binding: Binding | null | undefined;

/** The native binding, initialised as the public API initialises it; null when it is not there. */
function nativeBinding(): Binding | null {
  if (binding !== undefined) return binding;
  try {
    const module = createRequire(import.meta.url)("onnxruntime-node/dist/binding.js") as { binding?: Binding; initOrt?: () => void };
    if (typeof module.initOrt !== "function" || typeof module.binding?.InferenceSession !== "function") return (binding = null);
    module.initOrt();
    binding = module.binding;
  } catch {
    binding = null;
  }
  return binding;
}

/**
 * Opens `modelPath` on the native binding with options made by sessionOptions(); undefined when the binding is
 * not what this file knows (the caller then opens a public session). Throws if the model cannot open.
 */
export function openNativeSession(modelPath: string, options: ort.InferenceSession.SessionOptions): NativeSession | undefined {
  const native = nativeBinding();
  if (!native) return undefined;
  const session = new native.InferenceSession();
  session.loadModel(modelPath, options);
  let inputs: ValueSpec[];
  let outputs: ValueSpec[];
  try {
    inputs = session.inputMetadata.map(spec);
    outputs = session.outputMetadata.map(spec);
  } catch (error) {
    session.dispose();
    throw error;
  }
  const known = new Set(outputs.map((o) => o.name));
  const all = Object.fromEntries([...known].map((name) => [name, null]));
  let released = false;
  return {
    inputs,
    outputs,
    run(feeds, wanted) {
      if (released) throw new Error("the session was released");
      let fetches = all;
      if (wanted.length > 0) {
        fetches = {};
        for (const name of wanted) {
          // The public API checks the names before the native run; so does this.
          if (!known.has(name)) throw new RangeError(`the model has no output named "${name}"`);
          fetches[name] = null;
        }
      }
      return session.run(feeds, fetches, {});
    },
    release() {
      if (released) return;
      released = true;
      session.dispose();
    },
  };
}
