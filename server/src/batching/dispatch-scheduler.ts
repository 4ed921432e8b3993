/** When the batcher forms a batch: the coalescing of wake-ups and the queue-delay timer. */
export interface DispatchPolicy {
  /** Most rows in one batch (1 when the model does not batch). */
  readonly maxRows: number;
  /** How long a batch that is not full may wait for more rows; 0 dispatches when an executor is free. */
  readonly maxQueueDelayMs: number;
  /** Batch sizes that dispatch at once, without waiting out the delay. */
  readonly preferredBatchSizes: readonly number[];
}

/**
 * Calls `pump` when a batch may be formed. Requests decoded in the same turn of the event loop join one
 * batch: pumping after the I/O phase (not per request) costs a few microseconds at low load and makes
 * batches fuller under load. A batch short of full waits up to the queue delay, on one timer.
 */
export class DispatchScheduler {
  private pumpScheduled = false;
  private delayTimer: NodeJS.Timeout | undefined;
  private readonly preferred: ReadonlySet<number>;

  constructor(
    private readonly policy: DispatchPolicy,
    private readonly pump: () => void,
  ) {
    this.preferred = new Set(policy.preferredBatchSizes);
  }

  /** Pump once after this turn's I/O, however many times it is asked. */
  soon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Whether a batch of `rows`, whose oldest request has waited `waitedMs`, should wait for more rows; if
   * so, the pump runs again when the delay is up. `hurry` (draining) never waits.
   */
  holdBack(rows: number, waitedMs: number, hurry: boolean): boolean {
    const { maxRows, maxQueueDelayMs } = this.policy;
    if (maxQueueDelayMs <= 0 || hurry || rows >= maxRows || this.preferred.has(rows) || waitedMs >= maxQueueDelayMs) return false;
    this.delayTimer ??= setTimeout(() => {
      this.delayTimer = undefined;
      this.pump();
    }, Math.max(0, maxQueueDelayMs - waitedMs));
    return true;
  }

  /** A batch left: the delay it may have armed is moot. */
  dispatched(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
  }
}
