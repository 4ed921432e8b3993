/** Cumulative counters of one batcher, for GetModel and the Open Inference Protocol's ModelStatistics. */
export interface BatchStats {
  successCount: number;
  failureCount: number;
  /** Time from queueing to answer, summed over successful and failed requests. */
  successMsTotal: number;
  failureMsTotal: number;
  batchCount: number;
  /** Rows run, summed over batches (the inference count). */
  rowCount: number;
  queueMsTotal: number;
  /** Assembling batch inputs, running the session, splitting its outputs: summed over batches. */
  computeInputMsTotal: number;
  computeMsTotal: number;
  computeOutputMsTotal: number;
  /** Batches run a second time because their session died under them. */
  rerunCount: number;
  /** Batches run on the main thread's inline lane (an idle process), not on a worker. */
  inlineBatchCount: number;
  /** Epoch milliseconds of the last successful request; 0 before the first. */
  lastInferenceMs: number;
}

export function emptyStats(): BatchStats {
  return {
    successCount: 0,
    failureCount: 0,
    successMsTotal: 0,
    failureMsTotal: 0,
    batchCount: 0,
    rowCount: 0,
    queueMsTotal: 0,
    computeInputMsTotal: 0,
    computeMsTotal: 0,
    computeOutputMsTotal: 0,
    rerunCount: 0,
    inlineBatchCount: 0,
    lastInferenceMs: 0,
  };
}
