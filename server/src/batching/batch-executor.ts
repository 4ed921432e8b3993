import type { RunResult, TransferTensor } from "../runtime/index.js";

/** Something that runs one batch: a session in a worker thread, or the main thread's (inline-lane.ts). */
export interface BatchExecutor {
  run(feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult>;
}
