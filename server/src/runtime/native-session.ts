// onnxruntime-node's native session, run on the calling thread. The public InferenceSession.run() calls the
// same native run, but only after a setImmediate: one more turn of the event loop per run (~10 µs of the
// main thread's CPU beside a model's run, and the turn's latency), which an idle server's request pays on
// the main thread. The native binding is not onnxruntime-node's documented API, so it is taken only when it
// has the shape this file expects (the version package-lock.json pins does); otherwise the caller keeps the
// public session.
import { createRequire } from "node:module";
import type ort from "onnxruntime-node";

/** A session whose run() returns its outputs before it returns. */
export interface NativeSession {
  readonly outputNames: readonly string[];
  run(feeds: Record<string, ort.Tensor>, outputs: readonly string[]): Record<string, ort.Tensor>;
  release(): void;
}

interface Binding {
  InferenceSession: new () => {
    loadModel(path: string, options: ort.InferenceSession.SessionOptions): void;
    readonly outputMetadata: readonly { readonly name: string }[];
    run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor>;
    dispose(): void;
  };
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
  const outputNames = session.outputMetadata.map((m) => m.name);
  const known = new Set(outputNames);
  const all: Record<string, null> = {};
  for (const name of outputNames) all[name] = null;
  let released = false;
  return {
    outputNames,
    run(feeds, outputs) {
      if (released) throw new Error("the session was released");
      let fetches = all;
      if (outputs.length > 0) {
        fetches = {};
        for (const name of outputs) {
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
