/** Cumulative counters of one batcher, for GetModel and (later) the Open Inference Protocol's statistics. */
export interface BatchStats {
  successCount: number;
  failureCount: number;
  batchCount: number;
  /** Rows run, summed over batches (the inference count). */
  rowCount: number;
  queueMsTotal: number;
  computeMsTotal: number;
}

export function emptyStats(): BatchStats {
  return { successCount: 0, failureCount: 0, batchCount: 0, rowCount: 0, queueMsTotal: 0, computeMsTotal: 0 };
}
