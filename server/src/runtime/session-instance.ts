import { spawnWorker } from "./spawn-worker.js";
import { SessionGoneError } from "./session-gone.js";
import type { FromWorker, SessionWorkerInit, ToWorker, ValueSpec, WireTensor } from "./worker-protocol.js";
import type { ProviderName } from "./execution-providers.js";

/** Output of one run: tensors whose buffers now belong to the main thread. */
export interface RunResult {
  readonly outputs: readonly WireTensor[];
  readonly runMs: number;
  /** The feed buffers, back from the worker: the caller may reuse them. */
  readonly inputs: readonly ArrayBuffer[];
}

/**
 * One ONNX Runtime session in its own worker thread. `run` transfers the feed buffers to the worker (they
 * are unusable afterwards) and resolves with the outputs' buffers transferred back.
 */
export interface SessionInstance {
  readonly provider: ProviderName;
  readonly fallbackReason: string | undefined;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  run(feeds: readonly WireTensor[], outputs: readonly string[]): Promise<RunResult>;
  /** Releases the session, then ends the thread (ending it first aborts Node with a Napi::Error). */
  close(): Promise<void>;
}


export async function createSessionInstance(init: SessionWorkerInit): Promise<SessionInstance> {
  const worker = spawnWorker(import.meta.url, "session-worker", init);
  const pending = new Map<number, { resolve(r: RunResult): void; reject(e: Error): void }>();
  let nextId = 1;
  let exited = false;
  let closing: Promise<void> | undefined;

  const failAll = (error: Error): void => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  const ready = await new Promise<Extract<FromWorker, { kind: "ready" }>>((resolve, reject) => {
    const onMessage = (message: FromWorker): void => {
      if (message.kind === "ready") resolve(message);
      else if (message.kind === "failed") reject(new Error(message.message));
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`session worker exited with code ${code} while loading`)));
  }).catch(async (error: Error) => {
    await worker.terminate();
    throw error;
  });

  worker.removeAllListeners("message");
  worker.removeAllListeners("error");
  worker.removeAllListeners("exit");
  worker.on("message", (message: FromWorker) => {
    if (message.kind === "result" || message.kind === "run-error") {
      const p = pending.get(message.id);
      if (!p) return;
      pending.delete(message.id);
      if (message.kind === "result") p.resolve({ outputs: message.outputs, runMs: message.runMs, inputs: message.inputs });
      else p.reject(Object.assign(new Error(message.message), { inputs: message.inputs }));
    }
  });
  worker.on("error", (error) => failAll(error));
  worker.on("exit", (code) => {
    exited = true;
    failAll(new SessionGoneError(`session worker exited with code ${code}`));
  });

  return {
    provider: ready.provider,
    fallbackReason: ready.fallbackReason,
    inputs: ready.inputs,
    outputs: ready.outputs,
    run(feeds, outputs) {
      if (exited || closing) return Promise.reject(new SessionGoneError("session is closed"));
      const id = nextId++;
      return new Promise<RunResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const message: ToWorker = { kind: "run", id, feeds, outputs };
        worker.postMessage(message, feeds.map((f) => f.buffer));
      });
    },
    close() {
      closing ??= (async () => {
        if (exited) return;
        const closed = new Promise<void>((resolve) => {
          worker.on("message", (m: FromWorker) => m.kind === "closed" && resolve());
          worker.once("exit", () => resolve());
        });
        worker.postMessage({ kind: "close" } satisfies ToWorker);
        const timer = setTimeout(() => void worker.terminate(), 10_000);
        await closed;
        clearTimeout(timer);
        await worker.terminate();
      })();
      return closing;
    },
  };
}
