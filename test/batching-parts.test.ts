// The batcher's parts on their own: the queue (fairness, priorities, expiry, shares), the scheduler (when a
// short batch waits) and the assembly (feeds in, rows out). No executor, no gRPC, no ONNX Runtime.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BatchAssembly, DispatchScheduler, RequestQueue, type BatchRequest, type QueueEntry } from "../server/src/batching/index.js";

let clock = 0;
function entry(name: string, extra: Partial<BatchRequest> = {}): QueueEntry & { name: string } {
  const request: BatchRequest = { inputs: [], rows: 1, key: "k", outputs: [], deadline: Infinity, ...extra };
  return { name, request, enqueuedAt: clock++, state: "queued" };
}

/** Drains a queue batch by batch (at most `maxRows` rows each), as the batcher would. */
function order(queue: RequestQueue<QueueEntry & { name: string }>, maxRows = 1, now = 0): string[][] {
  const batches: string[][] = [];
  for (;;) {
    const head = queue.head(now, (e) => queue.remove(e));
    if (!head) return batches;
    const { batch } = queue.fill(head, maxRows, now, (e) => queue.remove(e));
    queue.start(batch);
    batches.push(batch.map((e) => e.name));
  }
}

describe("the request queue", () => {
  it("keeps arrival order for one tenant and batches by key", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(100);
    for (const [name, key] of [["a", "x"], ["b", "y"], ["c", "x"], ["d", "x"]] as const) queue.push(entry(name, { key }));
    assert.deepEqual(order(queue, 8), [["a", "c", "d"], ["b"]]);
    assert.equal(queue.size, 0);
  });

  it("alternates between a flooding tenant and a light one (virtual time by rows)", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(100);
    for (let i = 0; i < 6; i++) queue.push(entry(`A${i}`, { tenant: "A" }));
    queue.push(entry("B0", { tenant: "B" }));
    queue.push(entry("B1", { tenant: "B" }));
    const flat = order(queue).map((b) => b[0]);
    // A0 first (oldest), then B is served least, and so on until B has nothing left.
    assert.deepEqual(flat, ["A0", "B0", "A1", "B1", "A2", "A3", "A4", "A5"]);
  });

  it("a tenant back from idling starts level, not with credit", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(100);
    for (let i = 0; i < 4; i++) queue.push(entry(`A${i}`, { tenant: "A" }));
    order(queue); // A has been served 4 rows while B was away.
    for (let i = 0; i < 3; i++) queue.push(entry(`A${i + 4}`, { tenant: "A" }));
    for (let i = 0; i < 3; i++) queue.push(entry(`B${i}`, { tenant: "B" }));
    const flat = order(queue).map((b) => b[0]);
    assert.deepEqual(flat, ["A4", "B0", "A5", "B1", "A6", "B2"]);
  });

  it("serves priority 1 before 2 before none, and expires what it passes", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(100);
    queue.push(entry("none"));
    queue.push(entry("p2", { priority: 2 }));
    queue.push(entry("late", { priority: 1, deadline: 5 }));
    queue.push(entry("p1", { priority: 1 }));
    const expired: string[] = [];
    const head = queue.head(10, (e) => {
      expired.push((e as { name: string }).name);
      queue.remove(e as QueueEntry & { name: string });
      e.state = "done";
    });
    assert.equal(head && (head as { name: string }).name, "p1");
    assert.deepEqual(expired, ["late"]);
    queue.start([head!]);
    assert.deepEqual(order(queue, 1, 10), [["p2"], ["none"]]);
  });

  it("drops expired requests at its head and refuses a tenant beyond its share", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(2);
    queue.push(entry("old", { tenant: "A", deadline: 1 }));
    assert.equal(queue.hasRoomFor("A"), true);
    queue.push(entry("new", { tenant: "A" }));
    assert.equal(queue.hasRoomFor("A"), false);
    assert.equal(queue.hasRoomFor("B"), true);
    assert.equal(queue.hasRoomFor(undefined), true);
    const expired: string[] = [];
    const head = queue.head(2, (e) => {
      expired.push((e as { name: string }).name);
      queue.remove(e as QueueEntry & { name: string });
      e.state = "done";
    });
    assert.equal((head as { name: string }).name, "new");
    assert.deepEqual(expired, ["old"]);
    assert.equal(queue.size, 1);
    assert.equal(queue.hasRoomFor("A"), true);
  });

  it("fills a batch up to its row limit, skipping requests that do not fit", () => {
    const queue = new RequestQueue<QueueEntry & { name: string }>(100);
    queue.push(entry("a", { rows: 3 }));
    queue.push(entry("b", { rows: 4 }));
    queue.push(entry("c", { rows: 2 }));
    assert.deepEqual(order(queue, 5), [["a", "c"], ["b"]]);
  });
});

describe("the dispatch scheduler", () => {
  it("holds a short batch for the queue delay, and not a full, preferred or hurried one", async () => {
    let pumps = 0;
    const scheduler = new DispatchScheduler({ maxRows: 8, maxQueueDelayMs: 20, preferredBatchSizes: [4] }, () => pumps++);
    assert.equal(scheduler.holdBack(8, 0, false), false, "full");
    assert.equal(scheduler.holdBack(4, 0, false), false, "preferred");
    assert.equal(scheduler.holdBack(2, 0, true), false, "draining");
    assert.equal(scheduler.holdBack(2, 25, false), false, "waited out");
    assert.equal(scheduler.holdBack(2, 5, false), true, "short");
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(pumps, 1, "the delay timer pumps once");
    scheduler.holdBack(2, 0, false);
    scheduler.dispatched();
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(pumps, 1, "a dispatched batch disarms the timer");
  });

  it("coalesces wake-ups within one turn into one pump", async () => {
    let pumps = 0;
    const scheduler = new DispatchScheduler({ maxRows: 8, maxQueueDelayMs: 0, preferredBatchSizes: [] }, () => pumps++);
    for (let i = 0; i < 10; i++) scheduler.soon();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pumps, 1);
    assert.equal(scheduler.holdBack(1, 0, false), false, "no delay configured: never waits");
  });
});

describe("batch assembly", () => {
  const f32 = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);
  const req = (values: number[][], outputs: string[] = []): BatchRequest => ({
    inputs: [{ type: "float32", dims: [values.length, 2], data: f32(...values.flat()) }],
    rows: values.length,
    key: "2",
    outputs,
    deadline: Infinity,
  });

  it("concatenates rows into one buffer, splits outputs into views, and reuses buffers", () => {
    const assembly = new BatchAssembly({ label: "m:1", maxBatchSize: 8, inputs: [{ name: "x", type: "float32" }], outputNames: ["y", "z"], poolSize: 2 });
    const a = req([[1, 2]]);
    const b = req([[3, 4], [5, 6]], ["z"]);
    const [feed] = assembly.assemble([a, b], 3);
    assert.deepEqual(feed.dims, [3, 2]);
    assert.deepEqual(Array.from(new Float32Array(feed.buffer, 0, 6)), [1, 2, 3, 4, 5, 6]);
    assert.ok(feed.buffer.byteLength >= 8 * 2 * 4, "room for a full batch");
    assert.deepEqual(assembly.outputsFor([b]), ["z"]);
    assert.deepEqual(assembly.outputsFor([a, b]), [], "one request wants all");
    const z = Float32Array.of(10, 20, 30);
    const outputs = [{ name: "z", type: "float32" as const, dims: [3], buffer: z.buffer, byteOffset: 0, byteLength: 12 }];
    const oneRow = assembly.oneRowDims(outputs);
    const [mine] = assembly.split(outputs, b, 1, 3, false, oneRow);
    assert.deepEqual(mine.dims, [2]);
    const [single] = assembly.split(outputs, req([[7, 8]], ["z"]), 0, 3, false, oneRow);
    assert.deepEqual(single.dims, [1], "a one-row request's shape");
    assert.deepEqual(Array.from(new Float32Array(single.data.buffer, single.data.byteOffset, 1)), [10]);
    assert.equal(mine.data.buffer, z.buffer, "a view, not a copy");
    assert.deepEqual(Array.from(new Float32Array(mine.data.buffer, mine.data.byteOffset, 2)), [20, 30]);
    assert.throws(() => assembly.split(outputs, a, 0, 3, false, oneRow), /did not produce output "y"/);
    assert.throws(() => assembly.split(outputs, b, 0, 4, false, oneRow), /set max_batch_size to 0/);
    assembly.giveBack([feed.buffer]);
    const [again] = assembly.assemble([a], 1);
    assert.equal(again.buffer, feed.buffer, "the pooled buffer comes back");
  });

  it("leaves a non-batching model's tensors whole", () => {
    const assembly = new BatchAssembly({ label: "m:1", maxBatchSize: 0, inputs: [{ name: "x", type: "float32" }], outputNames: ["y"], poolSize: 2 });
    const [feed] = assembly.assemble([req([[1, 2], [3, 4]])], 1);
    assert.deepEqual(feed.dims, [2, 2]);
  });
});
