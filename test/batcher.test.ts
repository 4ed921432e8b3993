// The micro-batcher in memory: a fake executor in place of ONNX Runtime, no gRPC. Ordering, batching,
// splitting, deadlines, cancellation, priorities, tenant fairness, a failing request alone, a dead
// session, a full queue and drain.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBatcher, InlineLane, type BatchExecutor, type BatchRequest, type Batcher } from "../server/src/batching/index.js";
import { ServerError, Code } from "../server/src/common/errors.js";
import { SessionGoneError, WorkerCallError, type TransferTensor } from "../server/src/runtime/index.js";

/** A model y = 2x over [rows, 2] float32, run by a fake session that records each batch's first values. */
function fakeExecutor(options: { runMs?: number; fail?: (values: Float32Array) => Error | undefined } = {}): BatchExecutor & { batches: number[][] } {
  const batches: number[][] = [];
  return {
    batches,
    async run(feeds: readonly TransferTensor[]) {
      const x = feeds[0]!;
      const values = new Float32Array(x.buffer, x.byteOffset, x.byteLength / 4);
      await new Promise((resolve) => setTimeout(resolve, options.runMs ?? 5));
      const failure = options.fail?.(values);
      if (failure) throw failure instanceof SessionGoneError ? failure : new WorkerCallError(failure.message, [x.buffer]);
      const rows = x.dims[0]!;
      batches.push(Array.from({ length: rows }, (_, r) => values[r * 2]!));
      const y = Float32Array.from(values, (v) => v * 2);
      return { outputs: [{ name: "y", type: "float32" as const, dims: [rows, 2], buffer: y.buffer, byteOffset: 0, byteLength: y.byteLength }], runMs: options.runMs ?? 5, inputs: [x.buffer] };
    },
  };
}

const batcherOf = (executors: BatchExecutor[], extra: Partial<Parameters<typeof createBatcher>[0]> = {}): Batcher =>
  createBatcher(
    { label: "fake:1", maxBatchSize: 8, maxQueueDelayUs: 0, preferredBatchSizes: [], maxQueueSize: 1000, inputs: [{ name: "x", type: "float32" }], outputNames: ["y"], ...extra },
    executors,
  );

/** A one-row request whose two values are (v, v + 0.5). */
function request(v: number, extra: Partial<BatchRequest> = {}): BatchRequest {
  const data = new Uint8Array(Float32Array.of(v, v + 0.5).buffer);
  return { inputs: [{ type: "float32", dims: [1, 2], data }], rows: 1, key: "2", outputs: [], deadline: Infinity, ...extra };
}

const valuesOf = (r: { outputs: readonly { data: Uint8Array }[] }): number[] => {
  const d = r.outputs[0]!.data;
  return Array.from(new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4));
};

/** One turn of the event loop: the batcher forms batches on the next one. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const codeOf = async (p: Promise<unknown>): Promise<number | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof ServerError ? e.code : -1),
  );

describe("the batcher, in memory", () => {
  it("batches what waits while a session is busy, up to max_batch_size, and gives each request its own rows", async () => {
    const exec = fakeExecutor({ runMs: 20 });
    const b = batcherOf([exec]);
    // The first request finds the session idle and runs alone; the rest wait and run 8 at a time, in order.
    const first = b.submit(request(0));
    await turn();
    const results = [first, ...Array.from({ length: 17 }, (_, i) => b.submit(request(i + 1)))];
    const done = await Promise.all(results);
    done.forEach((r, i) => assert.deepEqual(valuesOf(r), [2 * i, 2 * i + 1]));
    assert.deepEqual(exec.batches, [[0], [1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16], [17]]);
    assert.deepEqual(done.map((r) => r.batchRows), [1, ...Array(8).fill(8), ...Array(8).fill(8), 1]);
  });

  it("never runs a request whose deadline passed or that was cancelled while it waited", async () => {
    const exec = fakeExecutor({ runMs: 30 });
    const b = batcherOf([exec]);
    const blocker = b.submit(request(0));
    await turn();
    const late = b.submit(request(1, { deadline: performance.now() + 5 }));
    const controller = new AbortController();
    const cancelled = b.submit(request(2, { signal: controller.signal }));
    const kept = b.submit(request(3));
    controller.abort(new ServerError(Code.CANCELLED, "the client cancelled the call"));
    assert.equal(await codeOf(cancelled), Code.CANCELLED);
    await blocker;
    assert.equal(await codeOf(late), Code.DEADLINE_EXCEEDED);
    await kept;
    assert.deepEqual(exec.batches, [[0], [3]]);
  });

  it("runs a prioritized request before the ones that waited longer", async () => {
    const exec = fakeExecutor({ runMs: 20 });
    const b = batcherOf([exec], { maxBatchSize: 1 });
    const first = b.submit(request(0));
    await turn();
    await Promise.all([first, b.submit(request(1)), b.submit(request(2)), b.submit(request(3, { priority: 1 }))]);
    assert.deepEqual(exec.batches, [[0], [3], [1], [2]]);
  });

  it("holds one tenant to 3/4 of the queue: its 7th waiting request of 8 places is refused, another tenant's fits", async () => {
    const exec = fakeExecutor({ runMs: 40 });
    const b = batcherOf([exec], { maxBatchSize: 1, maxQueueSize: 8 });
    const running = b.submit(request(0, { tenant: "a" }));
    await turn(); // it runs, so the rest wait
    const waiting = Array.from({ length: 6 }, (_, i) => b.submit(request(i + 1, { tenant: "a" })));
    const seventh = b.submit(request(7, { tenant: "a" }));
    await assert.rejects(seventh, (e: unknown) => e instanceof ServerError && e.code === Code.RESOURCE_EXHAUSTED && /already has 6 requests waiting \(its share of the queue\)/.test(e.message));
    // Another tenant finds the room the cap kept free: ceil(8 × 3/4) = 6 for "a", 2 more for anyone else.
    const other = [b.submit(request(100, { tenant: "b" })), b.submit(request(101, { tenant: "b" }))];
    const full = b.submit(request(102, { tenant: "c" }));
    assert.equal(await codeOf(full), Code.RESOURCE_EXHAUSTED, "the queue itself is full at 8");
    await Promise.all([running, ...waiting, ...other]);
    // Everything admitted ran, one request a batch: 1 + 6 of "a", 2 of "b".
    assert.equal(exec.batches.length, 9);
  });

  it("shares the queue fairly: a tenant's request does not wait behind another tenant's flood", async () => {
    const exec = fakeExecutor({ runMs: 5 });
    const b = batcherOf([exec], { maxBatchSize: 4 });
    const flood = Array.from({ length: 40 }, (_, i) => b.submit(request(i, { tenant: "a" })));
    const polite = b.submit(request(100, { tenant: "b" }));
    await Promise.all([...flood, polite]);
    const at = exec.batches.findIndex((batch) => batch.includes(100));
    assert.ok(at >= 0 && at <= 2, `the other tenant's request ran in batch ${at} of ${exec.batches.length}`);
    // Without tenants (one shared key) it would have waited behind all 40.
    const fifo = fakeExecutor({ runMs: 5 });
    const plain = batcherOf([fifo], { maxBatchSize: 4 });
    await Promise.all([...Array.from({ length: 40 }, (_, i) => plain.submit(request(i))), plain.submit(request(100))]);
    assert.equal(fifo.batches.findIndex((batch) => batch.includes(100)), fifo.batches.length - 1);
  });

  it("a request that fails on its own data fails alone; the others of its batch succeed", async () => {
    const exec = fakeExecutor({ runMs: 10, fail: (values) => (values.includes(13) ? new Error("bad data in row") : undefined) });
    const b = batcherOf([exec]);
    const first = b.submit(request(0));
    await turn();
    const rest = [11, 12, 13, 14].map((v) => b.submit(request(v)));
    await first;
    const outcomes = await Promise.allSettled(rest);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["fulfilled", "fulfilled", "rejected", "fulfilled"],
    );
    const error = (outcomes[2] as PromiseRejectedResult).reason as ServerError;
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    assert.match(error.message, /could not run this request's data: bad data in row/);
  });

  it("a dead session (typed, whatever its message) answers UNAVAILABLE, not INVALID_ARGUMENT", async () => {
    const dead = fakeExecutor({ fail: () => new SessionGoneError("a message without the usual words") });
    const b = batcherOf([dead]);
    const outcomes = await Promise.allSettled([b.submit(request(0)), b.submit(request(1))]);
    for (const o of outcomes) {
      assert.equal(o.status, "rejected");
      assert.equal(((o as PromiseRejectedResult).reason as ServerError).code, Code.UNAVAILABLE);
    }
    // And a plain failure that mentions "closed" is the request's data, not a dead session.
    const plain = batcherOf([fakeExecutor({ fail: () => new Error("file closed unexpectedly while reading the data") })]);
    assert.equal(await codeOf(plain.submit(request(0))), Code.INVALID_ARGUMENT);
  });

  it("answers RESOURCE_EXHAUSTED at once when the queue is full, and drain waits for every accepted request", async () => {
    const exec = fakeExecutor({ runMs: 20 });
    const b = batcherOf([exec], { maxQueueSize: 3, maxBatchSize: 1 });
    const running = b.submit(request(0));
    await turn();
    const accepted = [running, b.submit(request(1)), b.submit(request(2)), b.submit(request(3))];
    assert.equal(await codeOf(b.submit(request(4))), Code.RESOURCE_EXHAUSTED);
    let drained = false;
    const draining = b.drain().then(() => (drained = true));
    assert.equal(await codeOf(b.submit(request(5))), Code.UNAVAILABLE, "a draining batcher takes no more");
    assert.equal(drained, false);
    await Promise.all(accepted);
    await draining;
    assert.equal(exec.batches.length, 4);
  });

  it("an inline lane takes the batches of an idle process that fit its budget, and the workers the rest", async () => {
    const worker = fakeExecutor({ runMs: 20 });
    const main = fakeExecutor({ runMs: 1 });
    const lane = new InlineLane(main, { probeRunUs: 300, budgetUs: 1000, learnsFromWorkers: false });
    const b = batcherOf([worker], { inline: lane });
    assert.deepEqual([...(await b.submit(request(0))).outputs.map((o) => o.dims)], [[1, 2]]);
    assert.equal(main.batches.length, 1, "alone: inline");
    // Four rows at once: 4 × 300 µs is over the budget.
    await Promise.all([0, 1, 2, 3].map((v) => b.submit(request(v))));
    assert.deepEqual(worker.batches, [[0, 1, 2, 3]]);
    assert.equal(b.stats.inlineBatchCount, 1);
  });

  it("the main thread runs at most one lane's batch per turn of the event loop, even when runs return at once", async () => {
    // Lanes whose runs return within their turn, as inline-session.ts's do; two models' batches formed in one turn.
    const atOnce = (): BatchExecutor & { batches: number[][] } => {
      const batches: number[][] = [];
      return {
        batches,
        run: async (feeds) => {
          const x = feeds[0]!;
          batches.push([new Float32Array(x.buffer, x.byteOffset, 1)[0]!]);
          return { outputs: [{ name: "y", type: "float32" as const, dims: [1, 2], buffer: new ArrayBuffer(8), byteOffset: 0, byteLength: 8 }], runMs: 0.01, inputs: [x.buffer] };
        },
      };
    };
    const [mainA, mainB] = [atOnce(), atOnce()];
    const [workerA, workerB] = [fakeExecutor({ runMs: 1 }), fakeExecutor({ runMs: 1 })];
    const lane = (main: BatchExecutor) => new InlineLane(main, { probeRunUs: 10, budgetUs: 1000, learnsFromWorkers: false });
    const a = batcherOf([workerA], { inline: lane(mainA) });
    const b = batcherOf([workerB], { inline: lane(mainB) });
    await Promise.all([a.submit(request(1)), b.submit(request(2))]);
    assert.equal(mainA.batches.length + mainB.batches.length, 1, "one of the two ran on the main thread");
    assert.equal(workerA.batches.length + workerB.batches.length, 1, "the other went to its worker");
    await turn();
    await b.submit(request(3));
    assert.deepEqual(mainB.batches.at(-1), [3], "the next turn, idle again: inline");
  });

  it("an inline lane runs nothing while a worker runs a batch: the next batch goes to a free worker", async () => {
    const [a, b2] = [fakeExecutor({ runMs: 30 }), fakeExecutor({ runMs: 30 })];
    const main = fakeExecutor({ runMs: 1 });
    const b = batcherOf([a, b2], { maxBatchSize: 16, inline: new InlineLane(main, { probeRunUs: 100, budgetUs: 1000, learnsFromWorkers: false }) });
    const big = Promise.all(Array.from({ length: 12 }, (_, v) => b.submit(request(v))));
    await turn();
    assert.equal(b.running, 1, "12 rows × 100 µs is over the budget: a worker runs them");
    await b.submit(request(50));
    await big;
    assert.deepEqual(main.batches, [], "nothing ran inline beside the worker's batch");
    assert.deepEqual([...a.batches, ...b2.batches].sort((x, y) => x.length - y.length)[0], [50]);
    await b.submit(request(60));
    assert.deepEqual(main.batches, [[60]], "idle again: inline");
  });

  it("an inline lane whose one-row runs all overrun the budget stops taking batches; fast worker runs bring it back", async () => {
    const slowMain = fakeExecutor({ runMs: 10 });
    const changes: [boolean, number][] = [];
    const lane = new InlineLane(slowMain, { probeRunUs: 100, budgetUs: 1000, learnsFromWorkers: true, onChange: (fits, us) => changes.push([fits, us]) });
    const worker = fakeExecutor({ runMs: 0.5 });
    const b = batcherOf([worker], { inline: lane });
    for (let i = 0; i < 5; i++) await b.submit(request(i));
    assert.equal(slowMain.batches.length, 4, "four runs of 10 ms fill the window: the fastest is over the 1 ms budget");
    assert.equal(worker.batches.length, 1, "the fifth ran on the worker");
    assert.deepEqual(changes, [[false, 10_000], [true, 500]], "the worker's 0.5 ms run brought the estimate under the budget");
    await b.submit(request(9));
    assert.equal(slowMain.batches.length, 5, "idle again and within budget: inline");
  });

  it("a lane that learns only from its own runs ignores the workers' (they run with more threads)", async () => {
    const lane = new InlineLane(fakeExecutor({ runMs: 10 }), { probeRunUs: 100, budgetUs: 1000, learnsFromWorkers: false });
    const b = batcherOf([fakeExecutor({ runMs: 0.1 })], { inline: lane });
    for (let i = 0; i < 8; i++) await b.submit(request(i));
    assert.equal(b.stats.inlineBatchCount, 4);
    assert.equal(lane.estimateUs, 10_000);
  });

  it("one slow run among fast ones (a burst of I/O before the run) leaves the lane on", async () => {
    let runMs = 10;
    const main: BatchExecutor = {
      async run(feeds) {
        const result = await fakeExecutor({ runMs: 1 }).run(feeds, []);
        return { ...result, runMs: runMs === 10 ? ((runMs = 0.1), 10) : 0.1 };
      },
    };
    const lane = new InlineLane(main, { probeRunUs: 100, budgetUs: 1000, learnsFromWorkers: true, onChange: () => assert.fail("a single slow run must not turn it off") });
    const b = batcherOf([fakeExecutor()], { inline: lane });
    for (let i = 0; i < 8; i++) await b.submit(request(i));
    assert.equal(b.stats.inlineBatchCount, 8);
  });
});
