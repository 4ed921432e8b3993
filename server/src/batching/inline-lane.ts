import type { RunResult, TransferTensor } from "../runtime/index.js";
import type { BatchExecutor } from "./batch-executor.js";

/**
 * Serving batches in flight in this process, on workers and on the main thread alike. There is one main
 * thread per process, so this is one count per process, shared by every batcher (and every server a test
 * starts in the same process: they share that thread too).
 */
let batchesInFlight = 0;

export function batchStarted(): void {
  batchesInFlight++;
}

export function batchEnded(): void {
  batchesInFlight--;
}

/**
 * Lane runs that returned in the current turn of the event loop. A lane's run may return within the turn it
 * started in (inline-session.ts runs it at once); until that turn ends the lane counts as busy, so that
 * another batch formed in the same turn (another model's, or one an answer's callback led to) goes to the
 * workers, as it would beside a worker's batch: the main thread runs at most one lane batch per turn.
 */
let runsEndingThisTurn = 0;

const turnEnded = (): void => {
  runsEndingThisTurn--;
};

/**
 * One-row run times the estimate is the fastest of. The fastest, because a run's time also holds what else
 * the machine did meanwhile (a load-time probe beside other models' warm-ups, a burst of I/O before
 * onnxruntime-node's setImmediate); a few, so that a model slower on real data than on the probe's zeros
 * leaves the lane after that many runs.
 */
const WINDOW = 4;

export interface InlineLaneOptions {
  /** The one-row run time measured when the session opened, in µs. */
  readonly probeRunUs: number;
  /** The longest run the main thread may be blocked for, in µs. */
  readonly budgetUs: number;
  /**
   * Whether the workers' one-row runs tell the main thread's run time too (their sessions run on one thread,
   * as the main thread's does); with more threads a worker is faster, and only inline runs count.
   */
  readonly learnsFromWorkers: boolean;
  /** Told when the estimate crosses the budget, either way. */
  readonly onChange?: (fits: boolean, estimateUs: number) => void;
}

/**
 * The idle path of a model version: a session on the main thread that takes a batch only while no other
 * batch runs anywhere in the process (the main thread has nothing else to do, and more requests are not
 * likely to be waiting on it) and the batch's estimated run time fits the budget. Under load every batch goes
 * to the workers, which keep the main thread free for the transport.
 */
export class InlineLane implements BatchExecutor {
  private readonly recent: number[];
  private next = 0;
  private estimate: number;

  constructor(
    private readonly executor: BatchExecutor,
    private readonly options: InlineLaneOptions,
  ) {
    this.recent = new Array<number>(WINDOW).fill(options.probeRunUs);
    this.estimate = options.probeRunUs;
  }

  /** The estimated one-row run time on the main thread, in µs. */
  get estimateUs(): number {
    return this.estimate;
  }

  /** Whether a batch of `rows` runs here now. */
  takes(rows: number): boolean {
    return batchesInFlight === 0 && runsEndingThisTurn === 0 && rows * this.estimate <= this.options.budgetUs;
  }

  async run(feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult> {
    try {
      return await this.executor.run(feeds, outputs);
    } finally {
      // Queued before the batcher answers the batch, so before any pump those answers lead to.
      runsEndingThisTurn++;
      setImmediate(turnEnded);
    }
  }

  /** A batch of this version ran (here, or on a worker): one-row runs update the estimate. */
  observe(rows: number, runMs: number, inline: boolean): void {
    if (rows !== 1 || (!inline && !this.options.learnsFromWorkers)) return;
    const fitted = this.estimate <= this.options.budgetUs;
    this.recent[this.next] = runMs * 1000;
    this.next = (this.next + 1) % WINDOW;
    this.estimate = Math.min(...this.recent);
    const fits = this.estimate <= this.options.budgetUs;
    if (fits !== fitted) this.options.onChange?.(fits, this.estimate);
  }
}
