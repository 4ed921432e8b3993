import type { ProviderName } from "./execution-providers.js";
import { buffersOf, type TransferTensor } from "./tensor-types.js";
import type { ValueSpec } from "./worker-protocol.js";
import { WorkerClient } from "./worker-client.js";
import type { RunPayload, RunReply, SessionInfo, SessionWorkerInit } from "./session-worker.js";

/** Output of one run: tensors whose buffers now belong to the main thread. */
export type RunResult = RunReply;

/**
 * One ONNX Runtime session in its own worker thread. `run` transfers the feed buffers to the worker (they
 * are unusable afterwards) and resolves with the outputs' buffers transferred back. A failed run rejects with
 * a WorkerCallError holding the feed buffers; a session whose thread ended, with SessionGoneError.
 */
export interface SessionInstance {
  readonly provider: ProviderName;
  readonly fallbackReason: string | undefined;
  /** Whether the session runs on onnxruntime-node's native binding (else its public API, with a turn per run). */
  readonly nativeRun: boolean;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  run(feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult>;
  /** Resolves with the thread's exit code when it ends for any reason (closed, terminated, crashed). */
  readonly exited: Promise<number>;
  /** Releases the session, then ends the thread. */
  close(): Promise<void>;
  /** Ends the thread at once (a stuck or unresponsive session). */
  terminate(): Promise<void>;
  /**
   * Fault injection for tests, honoured only when the server runs with AIAAS_TEST_HOOKS=1: "exit" ends the
   * worker thread as a crash would; "hang" makes its next run block the thread for `ms`.
   */
  injectFault(fault: { readonly kind: "exit" } | { readonly kind: "hang"; readonly ms: number }): Promise<void>;
}

export async function createSessionInstance(init: SessionWorkerInit): Promise<SessionInstance> {
  const worker = await WorkerClient.start<SessionInfo>(import.meta.url, "session-worker", init);
  return {
    provider: worker.provider,
    fallbackReason: worker.fallbackReason,
    nativeRun: worker.info.nativeRun,
    inputs: worker.info.inputs,
    outputs: worker.info.outputs,
    run: (feeds, outputs) => worker.call<RunReply>("run", { feeds, outputs } satisfies RunPayload, buffersOf(feeds)),
    exited: worker.exited,
    close: () => worker.close(),
    terminate: () => worker.terminate(),
    injectFault: (fault) => worker.call("inject-fault", fault),
  };
}
