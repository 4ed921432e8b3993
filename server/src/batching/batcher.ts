import { onAbort } from "../common/abort-listeners.js";
import { Code, ServerError, deadlineExceeded, invalidArgument, resourceExhausted, cancelled, unavailable } from "../common/errors.js";
import { SessionGoneError, type HostTensor, type RunResult, type TensorType, type WireTensor } from "../runtime/index.js";
import type { BatchRequest, BatchResult } from "./batch-request.js";
import { emptyStats, type BatchStats } from "./batch-stats.js";

/** Something that runs one batch: a session instance in a worker thread. */
export interface BatchExecutor {
  run(feeds: readonly WireTensor[], outputs: readonly string[]): Promise<RunResult>;
}

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

interface Item {
  readonly request: BatchRequest;
  readonly enqueuedAt: number;
  state: "queued" | "running" | "done";
  resolve(result: BatchResult): void;
  reject(error: Error): void;
  /** Stops listening to the request's signal. */
  detach: () => void;
}

const noop = (): void => undefined;

export function createBatcher(options: BatcherOptions, executors: readonly BatchExecutor[]): Batcher {
  if (executors.length === 0) throw new Error(`${options.label}: a batcher needs at least one executor`);
  const idle = [...executors];
  const stats = emptyStats();
  const maxRows = Math.max(1, options.maxBatchSize);
  const delayMs = options.maxQueueDelayUs / 1000;
  const preferred = new Set(options.preferredBatchSizes);

  let queue: Item[] = [];
  let tombstones = 0;
  let live = 0;
  let running = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  let delayTimer: NodeJS.Timeout | undefined;

  /** Lower is more urgent; requests without a priority come after every prioritized one. */
  const urgency = (item: Item): number => ((item.request.priority ?? 0) > 0 ? item.request.priority! : Infinity);
  /** Requests queued with a priority: while there are any, the batch head is the most urgent of them. */
  let prioritized = 0;
  // Fairness between tenants: rows each tenant has had run (virtual time). While requests of two or more
  // tenants wait, the batch head is the oldest request of the tenant served least, so one tenant's flood
  // cannot make another's requests wait behind all of it. A tenant that returns after idling starts level
  // with the others instead of with a credit to spend.
  const queuedByTenant = new Map<string, number>();
  const served = new Map<string, number>();
  const tenantOf = (item: Item): string => item.request.tenant ?? "";
  const joinTenant = (tenant: string): void => {
    const n = queuedByTenant.get(tenant) ?? 0;
    if (n === 0) {
      let floor = Infinity;
      for (const t of queuedByTenant.keys()) floor = Math.min(floor, served.get(t) ?? 0);
      served.set(tenant, Math.max(served.get(tenant) ?? 0, floor === Infinity ? 0 : floor));
    }
    queuedByTenant.set(tenant, n + 1);
  };
  const leaveTenant = (tenant: string): void => {
    const n = (queuedByTenant.get(tenant) ?? 1) - 1;
    if (n <= 0) queuedByTenant.delete(tenant);
    else queuedByTenant.set(tenant, n);
  };
  /** Per tenant, at most this many queued requests when several share the queue: others always find room. */
  const tenantQueueCap = Math.max(1, Math.ceil(options.maxQueueSize * 0.75));

  const leaveQueue = (item: Item): void => {
    live--;
    tombstones++;
    if ((item.request.priority ?? 0) > 0) prioritized--;
    leaveTenant(tenantOf(item));
  };

  const settle = (item: Item, outcome: { result?: BatchResult; error?: Error }): void => {
    if (item.state === "done") return;
    if (item.state === "queued") leaveQueue(item);
    item.state = "done";
    item.detach();
    const elapsed = performance.now() - item.enqueuedAt;
    if (outcome.error) {
      stats.failureCount++;
      stats.failureMsTotal += elapsed;
      item.reject(outcome.error);
    } else {
      stats.successCount++;
      stats.successMsTotal += elapsed;
      stats.lastInferenceMs = Date.now();
      item.resolve(outcome.result!);
    }
    checkDrained();
  };

  const checkDrained = (): void => {
    if (draining && live === 0 && running === 0 && drained) {
      drained();
      drained = undefined;
    }
  };

  const compact = (): void => {
    if (tombstones > 32 && tombstones * 2 > queue.length) {
      queue = queue.filter((item) => item.state === "queued");
      tombstones = 0;
    }
  };

  /** Picks the next batch from the queue, or undefined when there is none or it should wait for more. */
  const form = (now: number): Item[] | undefined => {
    let headIndex = 0;
    while (headIndex < queue.length) {
      const head = queue[headIndex];
      if (head.state !== "queued") {
        headIndex++;
        continue;
      }
      if (now >= head.request.deadline) {
        settle(head, { error: deadlineExceeded(`${options.label}: the deadline passed while the request waited in the queue`) });
        headIndex++;
        continue;
      }
      break;
    }
    if (headIndex > 0) {
      queue = queue.slice(headIndex);
      tombstones = queue.reduce((n, item) => n + (item.state === "queued" ? 0 : 1), 0);
    }
    if (queue.length === 0) return undefined;
    let head = queue[0];
    if (queuedByTenant.size > 1) {
      // The oldest request of each waiting tenant, and of those the tenant served least.
      const firsts = new Map<string, Item>();
      for (let i = 0; i < queue.length && firsts.size < queuedByTenant.size; i++) {
        const item = queue[i];
        if (item.state === "queued" && !firsts.has(tenantOf(item))) firsts.set(tenantOf(item), item);
      }
      let least = Infinity;
      for (const [tenant, item] of firsts) {
        const v = served.get(tenant) ?? 0;
        if (v < least) {
          least = v;
          head = item;
        }
      }
    }
    if (prioritized > 0) {
      for (const item of queue) {
        if (item.state !== "queued" || urgency(item) >= urgency(head)) continue;
        if (now >= item.request.deadline) settle(item, { error: deadlineExceeded(`${options.label}: the deadline passed while the request waited in the queue`) });
        else head = item;
      }
    }
    const batch = [head];
    let rows = head.request.rows;
    if (options.maxBatchSize > 0) {
      for (let i = 0; i < queue.length && rows < maxRows; i++) {
        const item = queue[i];
        if (item === head || item.state !== "queued" || item.request.key !== head.request.key) continue;
        if (now >= item.request.deadline) {
          settle(item, { error: deadlineExceeded(`${options.label}: the deadline passed while the request waited in the queue`) });
          continue;
        }
        if (rows + item.request.rows > maxRows) continue;
        batch.push(item);
        rows += item.request.rows;
      }
      const waited = now - head.enqueuedAt;
      if (delayMs > 0 && !draining && rows < maxRows && !preferred.has(rows) && waited < delayMs) {
        delayTimer ??= setTimeout(() => {
          delayTimer = undefined;
          pump();
        }, Math.max(0, delayMs - waited));
        return undefined;
      }
    }
    for (const item of batch) {
      leaveQueue(item);
      item.state = "running";
      const tenant = tenantOf(item);
      served.set(tenant, (served.get(tenant) ?? 0) + item.request.rows);
    }
    compact();
    return batch;
  };

  const pump = (): void => {
    while (idle.length > 0 && live > 0) {
      const batch = form(performance.now());
      if (!batch) return;
      if (delayTimer) {
        clearTimeout(delayTimer);
        delayTimer = undefined;
      }
      void dispatch(idle.pop()!, batch);
    }
  };

  // Requests decoded in the same turn of the event loop join one batch: pumping after the I/O phase (not
  // per request) costs a few microseconds at low load and makes batches fuller under load.
  let pumpScheduled = false;
  const schedulePump = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    });
  };

  const dispatch = async (executor: BatchExecutor, batch: Item[]): Promise<void> => {
    running++;
    const started = performance.now();
    try {
      await runBatch(executor, batch, started);
    } finally {
      running--;
      idle.push(executor);
      schedulePump();
      checkDrained();
    }
  };

  /** Runs items as one batch; if the batch fails and holds several requests, retries each alone so one
   * request's bad data (e.g. an index out of range) fails only that request. */
  const runBatch = async (executor: BatchExecutor, batch: Item[], started: number): Promise<void> => {
    const rows = batch.reduce((n, item) => n + item.request.rows, 0);
    const wanted = unionOutputs(batch);
    let result: RunResult;
    try {
      const assembling = performance.now();
      const feeds = assemble(batch, rows);
      stats.computeInputMsTotal += performance.now() - assembling;
      result = await executor.run(feeds, wanted);
      giveBack(result.inputs);
    } catch (error) {
      giveBack((error as { inputs?: ArrayBuffer[] }).inputs);
      if (batch.length > 1) {
        for (const item of batch) await runBatch(executor, [item], started);
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      settle(batch[0], {
        error: error instanceof SessionGoneError
          ? unavailable(`${options.label}: the model's session stopped; retry`)
          : // Shapes and types were validated, so what fails when a request runs alone is its data.
            invalidArgument(`${options.label}: ONNX Runtime could not run this request's data: ${message.split("\n")[0]}`),
      });
      return;
    }
    stats.batchCount++;
    stats.rowCount += rows;
    stats.computeMsTotal += result.runMs;
    options.onBatch?.(rows, batch.length, result.runMs);
    const splitting = performance.now();
    let offset = 0;
    for (const item of batch) {
      const queueMs = started - item.enqueuedAt;
      stats.queueMsTotal += queueMs;
      try {
        const outputs = split(result.outputs, item, offset, rows, batch.length === 1);
        settle(item, { result: { outputs, queueMs, runMs: result.runMs, batchRows: rows } });
      } catch (error) {
        settle(item, { error: ServerError.from(error) });
      }
      offset += item.request.rows;
    }
    stats.computeOutputMsTotal += performance.now() - splitting;
  };

  // Batch input buffers travel to a worker and come back with the results; reusing them spares the main
  // thread an allocation (and its GC) per batch and input.
  const pools: ArrayBuffer[][] = options.inputs.map(() => []);
  const poolLimit = executors.length * 2;
  const takeBuffer = (input: number, bytes: number, rows: number): ArrayBuffer => {
    const pool = pools[input];
    for (let i = pool.length - 1; i >= 0; i--) {
      if (pool[i].byteLength >= bytes) return pool.splice(i, 1)[0];
    }
    // Room for a full batch of rows this size, so the buffer fits the batches that follow.
    const full = options.maxBatchSize > 0 ? (bytes / rows) * maxRows : bytes;
    return new ArrayBuffer(Math.max(bytes, Math.min(full, 64 << 20)));
  };
  const giveBack = (buffers: readonly ArrayBuffer[] | undefined): void => {
    buffers?.forEach((buffer, input) => {
      const pool = pools[input];
      if (pool && pool.length < poolLimit) pool.push(buffer);
    });
  };

  const assemble = (batch: readonly Item[], rows: number): WireTensor[] =>
    options.inputs.map((input, i) => {
      const first = batch[0].request.inputs[i];
      let bytes = 0;
      for (const item of batch) bytes += item.request.inputs[i].data.byteLength;
      // The one copy on the way in: request bytes (views into gRPC frames) into a transferable buffer.
      const buffer = takeBuffer(i, bytes, rows);
      const target = new Uint8Array(buffer);
      let at = 0;
      for (const item of batch) {
        const data = item.request.inputs[i].data;
        target.set(data, at);
        at += data.byteLength;
      }
      const dims = options.maxBatchSize > 0 ? [rows, ...first.dims.slice(1)] : [...first.dims];
      return { name: input.name, type: input.type, dims, buffer, byteOffset: 0, byteLength: bytes };
    });

  const unionOutputs = (batch: readonly Item[]): string[] => {
    if (batch.some((item) => item.request.outputs.length === 0)) return [];
    const names = new Set<string>();
    for (const item of batch) for (const name of item.request.outputs) names.add(name);
    return options.outputNames.filter((name) => names.has(name));
  };

  const split = (outputs: readonly WireTensor[], item: Item, rowOffset: number, rows: number, whole: boolean): HostTensor[] => {
    const names = item.request.outputs.length ? item.request.outputs : options.outputNames;
    return names.map((name) => {
      const out = outputs.find((o) => o.name === name);
      if (!out) throw new ServerError(Code.INTERNAL, `${options.label}: the model did not produce output "${name}"`);
      if (whole || options.maxBatchSize === 0) {
        return { type: out.type, dims: out.dims, data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
      }
      if (out.dims[0] !== rows) {
        throw new ServerError(Code.INTERNAL, `${options.label}: output "${name}" has ${out.dims[0]} rows for a batch of ${rows}; set max_batch_size to 0 for a model whose outputs are not batched`);
      }
      const rowBytes = rows === 0 ? 0 : out.byteLength / rows;
      const k = item.request.rows;
      // A view of this request's rows: no copy.
      const data = new Uint8Array(out.buffer, out.byteOffset + rowOffset * rowBytes, k * rowBytes);
      return { type: out.type, dims: [k, ...out.dims.slice(1)], data };
    });
  };

  return {
    submit(request) {
      if (draining) return Promise.reject(unavailable(`${options.label} is being unloaded; retry to reach the version that replaces it`));
      if (request.signal?.aborted) return Promise.reject(abortError(request.signal, options.label));
      if (live >= options.maxQueueSize) {
        return Promise.reject(resourceExhausted(`${options.label}: the queue is full (${options.maxQueueSize} requests waiting); retry later or raise max_queue_size`));
      }
      if (performance.now() >= request.deadline) {
        return Promise.reject(deadlineExceeded(`${options.label}: the deadline passed before the request was queued`));
      }
      const tenant = request.tenant ?? "";
      if (request.tenant !== undefined && (queuedByTenant.get(tenant) ?? 0) >= tenantQueueCap) {
        return Promise.reject(
          resourceExhausted(`${options.label}: this caller already has ${tenantQueueCap} requests waiting (its share of the queue); retry later`, 10),
        );
      }
      return new Promise<BatchResult>((resolve, reject) => {
        const item: Item = {
          request,
          enqueuedAt: performance.now(),
          state: "queued",
          resolve,
          reject,
          detach: noop,
        };
        if (request.signal) {
          const signal = request.signal;
          item.detach = onAbort(signal, () => {
            if (item.state === "queued") settle(item, { error: abortError(signal, options.label) });
          });
        }
        queue.push(item);
        joinTenant(tenant);
        live++;
        if ((request.priority ?? 0) > 0) prioritized++;
        schedulePump();
      });
    },
    get queued() {
      return live;
    },
    get running() {
      return running;
    },
    stats,
    drain() {
      draining = true;
      if (live === 0 && running === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        drained = resolve;
        pump();
      });
    },
  };
}

function abortError(signal: AbortSignal, label: string): Error {
  return signal.reason instanceof ServerError ? signal.reason : cancelled(`${label}: the request was cancelled`);
}
