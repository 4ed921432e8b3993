import { onAbort } from "../common/abort-listeners.js";
import { ServerError, deadlineExceeded, invalidArgument, resourceExhausted, cancelled, unavailable } from "../common/errors.js";
import { SessionGoneError, WorkerCallError, type RunResult, type TensorType } from "../runtime/index.js";
import { BatchAssembly } from "./batch-assembly.js";
import type { BatchExecutor } from "./batch-executor.js";
import type { BatchRequest, BatchResult } from "./batch-request.js";
import { emptyStats, type BatchStats } from "./batch-stats.js";
import { DispatchScheduler } from "./dispatch-scheduler.js";
import { batchEnded, batchStarted, type InlineLane } from "./inline-lane.js";
import { RequestQueue, type QueueEntry } from "./request-queue.js";

export interface BatcherOptions {
  /** For messages and telemetry, e.g. "mnist-cnn:1". */
  readonly label: string;
  /** 0: no batching; each request runs alone with the model's full shape. */
  readonly maxBatchSize: number;
  /** How long a batch that is not full may wait for more rows; 0 dispatches when an instance is free. */
  readonly maxQueueDelayUs: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueSize: number;
  readonly inputs: readonly { readonly name: string; readonly type: TensorType }[];
  readonly outputNames: readonly string[];
  /** A main-thread session for batches that arrive while the process is idle (see inline-lane.ts). */
  readonly inline?: InlineLane;
  /** Called once per batch that ran, for telemetry. */
  readonly onBatch?: (rows: number, requests: number, runMs: number) => void;
}

/** The dynamic micro-batcher of one model version. */
export interface Batcher {
  submit(request: BatchRequest): Promise<BatchResult>;
  /** Requests waiting in the queue. */
  readonly queued: number;
  /** Batches running. */
  readonly running: number;
  readonly stats: Readonly<BatchStats>;
  /** Stops taking requests; resolves once every accepted request has settled. */
  drain(): Promise<void>;
}

interface Item extends QueueEntry {
  resolve(result: BatchResult): void;
  reject(error: Error): void;
  /** Stops listening to the request's signal. */
  detach: () => void;
}

type Outcome = { readonly result: BatchResult; readonly error?: undefined } | { readonly error: Error; readonly result?: undefined };

const noop = (): void => undefined;

/** Per tenant, at most this share of the queue when several share it: others always find room. */
const TENANT_QUEUE_SHARE = 0.75;

export function createBatcher(options: BatcherOptions, executors: readonly BatchExecutor[]): Batcher {
  if (executors.length === 0) throw new Error(`${options.label}: a batcher needs at least one executor`);
  return new MicroBatcher(options, executors);
}

/**
 * The queue (fairness, priorities, deadlines), the scheduler (when to form a batch) and the assembly
 * (feeds in, rows out) composed: this class owns the executors, the requests' lives and the counters.
 */
class MicroBatcher implements Batcher {
  readonly stats = emptyStats();
  private readonly idle: BatchExecutor[];
  private readonly queue: RequestQueue<Item>;
  private readonly scheduler: DispatchScheduler;
  private readonly assembly: BatchAssembly;
  private readonly maxRows: number;
  private runningBatches = 0;
  private draining = false;
  private drained: (() => void) | undefined;
  private readonly expire = (item: Item): void =>
    this.settle(item, { error: deadlineExceeded(`${this.options.label}: the deadline passed while the request waited in the queue`) });

  constructor(
    private readonly options: BatcherOptions,
    executors: readonly BatchExecutor[],
  ) {
    this.idle = [...executors];
    this.maxRows = Math.max(1, options.maxBatchSize);
    this.queue = new RequestQueue(Math.max(1, Math.ceil(options.maxQueueSize * TENANT_QUEUE_SHARE)));
    this.scheduler = new DispatchScheduler(
      { maxRows: this.maxRows, maxQueueDelayMs: options.maxQueueDelayUs / 1000, preferredBatchSizes: options.preferredBatchSizes },
      () => this.pump(),
    );
    this.assembly = new BatchAssembly({ ...options, poolSize: executors.length * 2 });
  }

  get queued(): number {
    return this.queue.size;
  }

  get running(): number {
    return this.runningBatches;
  }

  submit(request: BatchRequest): Promise<BatchResult> {
    const refusal = this.refusal(request);
    if (refusal) return Promise.reject(refusal);
    return new Promise<BatchResult>((resolve, reject) => {
      const item: Item = { request, enqueuedAt: performance.now(), state: "queued", resolve, reject, detach: noop };
      const signal = request.signal;
      if (signal) {
        item.detach = onAbort(signal, () => {
          if (item.state === "queued") this.settle(item, { error: abortError(signal, this.options.label) });
        });
      }
      this.queue.push(item);
      this.scheduler.soon();
    });
  }

  drain(): Promise<void> {
    this.draining = true;
    if (this.queue.size === 0 && this.runningBatches === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.drained = resolve;
      this.pump();
    });
  }

  /** Why a request is turned away at the door, or undefined when it may queue. */
  private refusal(request: BatchRequest): ServerError | undefined {
    const { label, maxQueueSize } = this.options;
    if (this.draining) return unavailable(`${label} is being unloaded; retry to reach the version that replaces it`);
    if (request.signal?.aborted) return abortError(request.signal, label);
    if (this.queue.size >= maxQueueSize) {
      return resourceExhausted(`${label}: the queue is full (${maxQueueSize} requests waiting); retry later or raise max_queue_size`);
    }
    if (performance.now() >= request.deadline) return deadlineExceeded(`${label}: the deadline passed before the request was queued`);
    if (!this.queue.hasRoomFor(request.tenant)) {
      const share = Math.max(1, Math.ceil(maxQueueSize * TENANT_QUEUE_SHARE));
      return resourceExhausted(`${label}: this caller already has ${share} requests waiting (its share of the queue); retry later`, 10);
    }
    return undefined;
  }

  private settle(item: Item, outcome: Outcome): void {
    if (item.state === "done") return;
    if (item.state === "queued") this.queue.remove(item);
    item.state = "done";
    item.detach();
    const elapsed = performance.now() - item.enqueuedAt;
    if (outcome.error) {
      this.stats.failureCount++;
      this.stats.failureMsTotal += elapsed;
      item.reject(outcome.error);
    } else {
      this.stats.successCount++;
      this.stats.successMsTotal += elapsed;
      this.stats.lastInferenceMs = Date.now();
      item.resolve(outcome.result);
    }
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.draining && this.queue.size === 0 && this.runningBatches === 0 && this.drained) {
      this.drained();
      this.drained = undefined;
    }
  }

  /** Forms batches while an executor is free and requests wait. */
  private pump(): void {
    while (this.idle.length > 0 && this.queue.size > 0) {
      const batch = this.form(performance.now());
      if (!batch) return;
      this.scheduler.dispatched();
      void this.dispatch(batch);
    }
  }

  /** The next batch, or undefined when none waits or it should wait for more rows. */
  private form(now: number): Item[] | undefined {
    const head = this.queue.head(now, this.expire);
    if (!head) return undefined;
    if (this.options.maxBatchSize <= 0) {
      this.queue.start([head]);
      return [head];
    }
    const { batch, rows } = this.queue.fill(head, this.maxRows, now, this.expire);
    if (this.scheduler.holdBack(rows, now - head.enqueuedAt, this.draining)) return undefined;
    this.queue.start(batch);
    return batch;
  }

  /** Runs a batch on the inline lane when it takes it, else on an idle executor (pump checked there is one). */
  private async dispatch(batch: Item[]): Promise<void> {
    const inline = this.options.inline;
    const onLane = inline !== undefined && inline.takes(rowsOf(batch));
    const executor = onLane ? inline : this.idle.pop()!;
    if (onLane) this.stats.inlineBatchCount++;
    this.runningBatches++;
    batchStarted();
    try {
      await this.runBatch(executor, batch, performance.now());
    } finally {
      batchEnded();
      this.runningBatches--;
      if (!onLane) this.idle.push(executor);
      this.scheduler.soon();
      this.checkDrained();
    }
  }

  /**
   * Runs items as one batch. If the session died under it, runs it once more (a prediction is safe to
   * repeat; the executor waits for its replacement). If the batch fails otherwise and holds several
   * requests, retries each alone so one request's bad data (e.g. an index out of range) fails only it.
   */
  private async runBatch(executor: BatchExecutor, batch: Item[], started: number, rerun = true): Promise<void> {
    const requests = batch.map((item) => item.request);
    const rows = rowsOf(batch);
    let result: RunResult;
    try {
      const assembling = performance.now();
      const feeds = this.assembly.assemble(requests, rows);
      this.stats.computeInputMsTotal += performance.now() - assembling;
      result = await executor.run(feeds, this.assembly.outputsFor(requests));
      this.assembly.giveBack(result.inputs);
      this.options.inline?.observe(rows, result.runMs, executor === this.options.inline);
    } catch (error) {
      this.assembly.giveBack(error instanceof WorkerCallError ? error.returned : undefined);
      if (error instanceof SessionGoneError && rerun) {
        this.stats.rerunCount++;
        await this.runBatch(executor, batch, started, false);
      } else if (batch.length > 1 && !(error instanceof SessionGoneError) && !(error instanceof ServerError)) {
        for (const item of batch) await this.runBatch(executor, [item], started, rerun);
      } else {
        const failure = this.runFailure(error);
        for (const item of batch) this.settle(item, { error: failure });
      }
      return;
    }
    this.deliver(batch, result, rows, started);
  }

  private runFailure(error: unknown): ServerError {
    const { label } = this.options;
    if (error instanceof SessionGoneError) return unavailable(`${label}: the model's session stopped; retry`);
    // The executor's own verdict (e.g. a session that gave up after crashing again and again).
    if (error instanceof ServerError) return error;
    const message = error instanceof Error ? error.message : String(error);
    // Shapes and types were validated, so what fails when a request runs alone is its data.
    return invalidArgument(`${label}: ONNX Runtime could not run this request's data: ${message.split("\n")[0]}`);
  }

  /** Splits a batch's outputs into each request's rows and answers them. */
  private deliver(batch: readonly Item[], result: RunResult, rows: number, started: number): void {
    const stats = this.stats;
    stats.batchCount++;
    stats.rowCount += rows;
    stats.computeMsTotal += result.runMs;
    this.options.onBatch?.(rows, batch.length, result.runMs);
    const splitting = performance.now();
    const oneRow = this.assembly.oneRowDims(result.outputs);
    let offset = 0;
    for (const item of batch) {
      const queueMs = started - item.enqueuedAt;
      stats.queueMsTotal += queueMs;
      try {
        const outputs = this.assembly.split(result.outputs, item.request, offset, rows, batch.length === 1, oneRow);
        this.settle(item, { result: { outputs, queueMs, runMs: result.runMs, batchRows: rows } });
      } catch (error) {
        this.settle(item, { error: ServerError.from(error) });
      }
      offset += item.request.rows;
    }
    stats.computeOutputMsTotal += performance.now() - splitting;
  }
}

function rowsOf(batch: readonly Item[]): number {
  let rows = 0;
  for (const item of batch) rows += item.request.rows;
  return rows;
}

function abortError(signal: AbortSignal, label: string): ServerError {
  return signal.reason instanceof ServerError ? signal.reason : cancelled(`${label}: the request was cancelled`);
}
