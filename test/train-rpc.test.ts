// The Train RPC end to end over gRPC on a real server: jobs train, publish servable versions, survive
// disconnects, resume from checkpoints, cancel cleanly, and every bad spec or chunk gets its status.
import assert from "node:assert/strict";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { AiaasError, Code, createClient, Tensor, type AiaasClient, type TrainChunk, type TrainEvent, type TrainSpecInput } from "@aiaas/sdk";
import { TrainingClient, TrainRequest, type TrainEvent as WireTrainEvent } from "@aiaas/sdk/gen";
import { Graph } from "../server/src/training/onnx/graph.js";
import { decodeModel } from "../server/src/training/onnx/model-file.js";
import { seededRandom } from "../scripts/seeded-random.js";
import { startHarness, type Harness } from "./support/harness.js";
import { affineModel } from "./support/fixtures.js";

/** A 3-class toy task over 4 features: class k lights feature k, plus noise. */
function toyRows(count: number, seed: number): { x: Float32Array; y: BigInt64Array } {
  const random = seededRandom(seed);
  const x = new Float32Array(count * 4);
  const y = new BigInt64Array(count);
  for (let r = 0; r < count; r++) {
    const k = Math.floor(random() * 3);
    y[r] = BigInt(k);
    for (let i = 0; i < 4; i++) x[r * 4 + i] = (i === k ? 1.5 : 0) + (random() - 0.5);
  }
  return { x, y };
}

function* toyChunks(rows = 600, chunk = 100, seed = 5): Generator<TrainChunk> {
  const { x, y } = toyRows(rows, seed);
  for (let s = 0; s < rows; s += chunk) {
    yield { inputs: { input: Tensor.float32([chunk, 4], x.slice(s * 4, (s + chunk) * 4)) }, labels: Tensor.int64([chunk], y.slice(s, s + chunk)) };
  }
}

const TOY: TrainSpecInput = {
  model: "toy",
  architecture: { input: { dims: [4] }, layers: [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 3 }] },
  epochs: 4,
  batchSize: 20,
  optimizer: { type: "adam", learningRate: 0.01 },
  validationFraction: 0.2,
};

async function collect(events: AsyncIterable<TrainEvent>): Promise<{ events: TrainEvent[]; error?: AiaasError }> {
  const out: TrainEvent[] = [];
  try {
    for await (const e of events) out.push(e);
    return { events: out };
  } catch (error) {
    return { events: out, error: error as AiaasError };
  }
}

async function withServer(fn: (h: Harness, client: AiaasClient) => Promise<void>, options: Parameters<typeof startHarness>[1] = {}, models: Parameters<typeof startHarness>[0] = {}): Promise<void> {
  const h = await startHarness(models, options);
  const client = createClient({ address: h.server.address });
  try {
    await fn(h, client);
  } finally {
    client.close();
    await h.close();
  }
}

async function initializers(path: string): Promise<Map<string, Float32Array>> {
  const g = Graph.fromModel(decodeModel(await readFile(path)));
  return new Map([...g.initializers].filter(([, t]) => t.type === "float32" && t.dims.length > 0).map(([k, t]) => [k, t.data as Float32Array]));
}

test("a job streams its events, its loss falls, and the published version serves at once", async () => {
  await withServer(async (h, client) => {
    const { events, error } = await collect(client.train(TOY, toyChunks()));
    assert.equal(error, undefined);
    const states = events.filter((e) => e.type === "state").map((e) => (e as { state: string }).state);
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ["queued", "validating", "running", "succeeded"]);
    const metrics = events.filter((e) => e.type === "metrics") as Extract<TrainEvent, { type: "metrics" }>[];
    assert.ok(metrics.length >= 4 && metrics.at(-1)!.trainLoss < metrics[0]!.trainLoss * 0.5, `loss ${metrics[0]?.trainLoss} -> ${metrics.at(-1)?.trainLoss}`);
    assert.ok(metrics.every((m) => m.totalSteps === 4 * Math.ceil(480 / 20) && m.examplesPerSecond > 0));
    const validations = events.filter((e) => e.type === "validation") as Extract<TrainEvent, { type: "validation" }>[];
    assert.equal(validations.length, 4);
    assert.equal(validations[0]!.rows, 120);
    const done = events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
    assert.equal(done.model, "toy");
    assert.equal(done.version, "1");
    assert.ok(done.metrics.validationAccuracy > 0.9, `validation accuracy ${done.metrics.validationAccuracy}`);
    assert.deepEqual(events.map((e) => e.eventId), events.map((_, i) => BigInt(i + 1)), "event ids count up from 1 without gaps");

    // Served at once, with the architecture's shapes.
    const { x } = toyRows(5, 99);
    const r = await client.predict("toy", { input: Tensor.float32([5, 4], x) });
    assert.equal(r.version, "1");
    assert.deepEqual(r.outputs.probabilities!.shape, [5, 3]);
    assert.deepEqual(r.outputs.logits!.shape, [5, 3]);
    // The job is listed, succeeded, and its files are whole: no staging folder left behind.
    const job = await client.jobs.get(done.jobId);
    assert.equal(job.state, "succeeded");
    assert.equal(job.publishedVersion, "1");
    assert.ok((await client.jobs.list()).some((j) => j.id === done.jobId));
    assert.deepEqual((await readdir(h.root)).sort(), ["toy"]);
    assert.deepEqual((await readdir(join(h.root, "toy"))).sort(), ["1"]);
    const metricsFile = JSON.parse(await readFile(join(h.root, "toy", "1", "metrics.json"), "utf8"));
    assert.equal(metricsFile.job, done.jobId);
    assert.equal(((await stat(join(h.root, "toy", "1", "model.onnx"))).mode & 0o077), 0, "published files are private to the server's user");

    // A second job publishes version 2 beside it.
    const second = await collect(client.train({ ...TOY, epochs: 1 }, toyChunks()));
    assert.equal((second.events.find((e) => e.type === "completed") as { version: string }).version, "2");
  });
});

test("disconnecting after the upload does not stop the job; WatchJob resumes after the last event seen", async () => {
  await withServer(async (_h, client) => {
    const abort = new AbortController();
    const seen: TrainEvent[] = [];
    const spec = { ...TOY, epochs: 30, metricsIntervalSteps: 2 };
    await collect(
      (async function* () {
        for await (const e of client.train(spec, toyChunks(), { signal: abort.signal })) {
          seen.push(e);
          if (e.type === "metrics") abort.abort();
          yield e;
        }
      })(),
    );
    const last = seen.at(-1)!;
    assert.equal(last.type, "metrics");
    const rest = await collect(client.jobs.watch(last.jobId, { afterEventId: last.eventId }));
    assert.equal(rest.error, undefined);
    assert.equal(rest.events[0]!.eventId, last.eventId + 1n, "no event is missed");
    assert.equal(rest.events.at(-1)!.type, "state");
    assert.equal((rest.events.at(-1) as { state: string }).state, "succeeded");
    // Watching from the start replays everything.
    const all = await collect(client.jobs.watch(last.jobId));
    assert.equal(all.events.length, seen.length + rest.events.length);
  });
});

test("a client that goes away during the upload cancels the job; CancelJob mid-training publishes nothing", async () => {
  await withServer(async (h, client) => {
    // Upload broken off: the examples iterable fails halfway, once the job exists.
    let accepted!: () => void;
    const jobExists = new Promise<void>((resolve) => (accepted = resolve));
    const broken = await collect(
      (async function* () {
        const examples = (async function* () {
          let n = 0;
          for (const c of toyChunks()) {
            if (n++ === 2) {
              await jobExists;
              throw new Error("disk read failed");
            }
            yield c;
          }
        })();
        for await (const e of client.train(TOY, examples)) {
          accepted();
          yield e;
        }
      })(),
    );
    assert.equal(broken.error?.code, status.CANCELLED);
    assert.match(broken.error!.message, /reading the examples failed: disk read failed/);
    const brokenJob = broken.events[0]!.jobId;
    await waitFor(async () => (await client.jobs.get(brokenJob)).state === "cancelled");

    // Cancelled while running.
    let jobId = "";
    const cancelled = await collect(
      (async function* () {
        for await (const e of client.train({ ...TOY, model: "never", epochs: 500, metricsIntervalSteps: 1 }, toyChunks())) {
          if (e.type === "metrics" && !jobId) {
            jobId = e.jobId;
            await client.jobs.cancel(jobId);
          }
          yield e;
        }
      })(),
    );
    assert.equal(cancelled.error?.code, status.CANCELLED);
    assert.equal((cancelled.events.at(-1) as { state: string }).state, "cancelled");
    assert.equal((await client.jobs.get(jobId)).state, "cancelled");
    assert.deepEqual(await readdir(h.root), [], "nothing was published");
    await assert.rejects(client.predict("never", { input: Tensor.float32([1, 4], [0, 0, 0, 0]) }), (e: AiaasError) => e.code === Code.NOT_FOUND);
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("resume_from a checkpoint ends with the same weights as the uninterrupted run", async () => {
  await withServer(async (h, client) => {
    const spec = { ...TOY, epochs: 3, validationFraction: 0 };
    const full = await collect(client.train(spec, toyChunks()));
    const checkpoint = full.events.find((e) => e.type === "checkpoint") as Extract<TrainEvent, { type: "checkpoint" }>;
    assert.ok(checkpoint, "a checkpoint was written at the end of epoch 1");
    assert.equal(checkpoint.step, 600 / 20);
    const resumed = await collect(client.train({ ...spec, resumeFrom: checkpoint.checkpoint }, toyChunks()));
    assert.equal(resumed.error, undefined);
    const done = resumed.events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
    assert.equal(done.metrics.steps, 3 * 30);
    const a = await initializers(join(h.root, "toy", "1", "model.onnx"));
    const b = await initializers(join(h.root, "toy", "2", "model.onnx"));
    assert.ok(a.size > 0);
    for (const [name, values] of a) assert.deepEqual(b.get(name), values, name);
    // A checkpoint of other data does not fit.
    const mismatch = await collect(client.train({ ...spec, resumeFrom: checkpoint.checkpoint }, toyChunks(300)));
    assert.equal(mismatch.error?.code, status.FAILED_PRECONDITION);
    assert.match(mismatch.error!.message, /600 training rows.*300/);
  });
});

test("the same idempotency key attaches a retried Train to the job the first call created", async () => {
  await withServer(async (_h, client) => {
    const spec = { ...TOY, idempotencyKey: "upload-42" };
    const first = await collect(client.train(spec, toyChunks()));
    const retry = await collect(client.train(spec, toyChunks()));
    assert.equal(retry.events[0]!.jobId, first.events[0]!.jobId);
    assert.equal((await client.jobs.list()).length, 1);
  });
});

/** Sends raw wire messages on Train and returns the status the call ends with. */
async function rawTrain(address: string, messages: TrainRequest[]): Promise<{ code: number; details: string; events: WireTrainEvent[] }> {
  const c = new TrainingClient(address, credentials.createInsecure());
  const call = c.train(new Metadata());
  const events: WireTrainEvent[] = [];
  for (const m of messages) call.write(m);
  call.end();
  try {
    for await (const e of call) events.push(e as WireTrainEvent);
    return { code: status.OK, details: "", events };
  } catch (error) {
    return { code: (error as { code: number }).code, details: (error as { details: string }).details, events };
  } finally {
    c.close();
  }
}

const spec = (partial: Parameters<typeof TrainRequest.fromPartial>[0]): TrainRequest => TrainRequest.fromPartial(partial);

test("every bad spec and bad chunk gets its status and a message naming what is wrong", async () => {
  const cosModel = (() => {
    const g = new Graph("cosine");
    g.addInput("input", "float32", ["batch", 4]);
    g.addInitializer("w", { type: "float32", dims: [3, 4], data: new Float32Array(12).fill(0.1) });
    g.add("Cos", [g.op("Gemm", ["input", "w"], { transB: 1 })], { outputs: ["logits"], name: "cos_node" });
    g.addOutput("logits");
    return g.toModel();
  })();
  await withServer(
    async (h, client) => {
      const cases: [string, Promise<{ error?: AiaasError; events: TrainEvent[] }>, number, RegExp][] = [
        ["shape mismatch in the architecture", collect(client.train({ ...TOY, architecture: { input: { dims: [1, 4, 4] }, layers: [{ type: "dense", units: 3 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 0 \(dense\): expects an input of rank 2 or 3/],
        ["labels out of range", collect(client.train(TOY, [{ inputs: { input: Tensor.float32([2, 4], new Float32Array(8)) }, labels: Tensor.int64([2], [1n, 7n]) }])), status.INVALID_ARGUMENT, /chunk 0: labels\[1\] = 7 is out of range: the model has 3 classes/],
        ["empty data", collect(client.train(TOY, [])), status.INVALID_ARGUMENT, /no training rows arrived/],
        ["unknown base model", collect(client.train({ model: "x", baseModel: { name: "nope" } }, toyChunks())), status.NOT_FOUND, /model "nope" not found/],
        ["unsupported op in a base model", collect(client.train({ model: "x", baseModel: { name: "cosine" } }, toyChunks())), status.INVALID_ARGUMENT, /base model "cosine" cannot be trained: no gradient rule for op Cos \(node "cos_node"\)/],
        ["wrong input dtype", collect(client.train(TOY, [{ inputs: { input: Tensor.float64([2, 4], new Float64Array(8)) }, labels: Tensor.int64([2], [0n, 1n]) }])), status.INVALID_ARGUMENT, /chunk 0: inputs\["input"\] is DATA_TYPE_FP64; the model takes DATA_TYPE_FP32/],
        ["wrong row shape in a later chunk", collect(client.train(TOY, [...toyChunks(200), { inputs: { input: Tensor.float32([2, 5], new Float32Array(10)) }, labels: Tensor.int64([2], [0n, 1n]) }])), status.INVALID_ARGUMENT, /chunk 2: inputs\["input"\] has shape \[2,5\]: dim 1 must be 4/],
        ["unknown input name", collect(client.train(TOY, [{ inputs: { image: Tensor.float32([2, 4], new Float32Array(8)) }, labels: Tensor.int64([2], [0n, 1n]) }])), status.INVALID_ARGUMENT, /chunk 0: inputs\["image"\] is not an input of the model/],
        ["non-finite data", collect(client.train(TOY, [{ inputs: { input: Tensor.float32([2, 4], [0, 1, 2, NaN, 0, 0, 0, 0]) }, labels: Tensor.int64([2], [0n, 1n]) }])), status.INVALID_ARGUMENT, /chunk 0: inputs\["input"\]\[3\] is NaN/],
        ["rows disagree", collect(client.train(TOY, [{ inputs: { input: Tensor.float32([3, 4], new Float32Array(12)) }, labels: Tensor.int64([2], [0n, 1n]) }])), status.INVALID_ARGUMENT, /chunk 0: inputs\["input"\] has 3 rows but labels has 2/],
        ["bad model name", collect(client.train({ ...TOY, model: "../escape" }, toyChunks())), status.INVALID_ARGUMENT, /invalid model name/],
        ["bad optimizer value", collect(client.train({ ...TOY, optimizer: { learningRate: -1 } }, toyChunks())), status.INVALID_ARGUMENT, /optimizer.learning_rate must be greater than 0/],
        ["a learning rate of 0", collect(client.train({ ...TOY, optimizer: { learningRate: 0 } }, toyChunks())), status.INVALID_ARGUMENT, /optimizer.learning_rate must be greater than 0 and at most 10, got 0/],
        ["a learning rate of NaN", collect(client.train({ ...TOY, optimizer: { type: "sgd", learningRate: NaN } }, toyChunks())), status.INVALID_ARGUMENT, /optimizer.learning_rate must be greater than 0 and at most 10, got NaN/],
        ["0 epochs", collect(client.train({ ...TOY, epochs: 0 }, toyChunks())), status.INVALID_ARGUMENT, /epochs must be an integer from 1 to 10000, got 0/],
        ["a batch size of 0", collect(client.train({ ...TOY, batchSize: 0 }, toyChunks())), status.INVALID_ARGUMENT, /batch_size must be an integer from 1 to 65536, got 0/],
        ["a freeze prefix that matches nothing", collect(client.train({ model: "x", task: "regression", output: "y", baseModel: { name: "affine", freeze: ["fc9."] } }, toyChunks())), status.INVALID_ARGUMENT, /freeze pattern "fc9\." matches no parameter \(the model.s parameters: "b"\)/],
        ["token ids into a dense layer", collect(client.train({ ...TOY, architecture: { input: { dims: [4], type: "int64" }, layers: [{ type: "dense", units: 3 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 0 \(dense\): takes float values, but gets int64 token ids: put an embedding layer first/],
        ["a head of 1 class", collect(client.train({ model: "x", baseModel: { name: "affine", head: { classes: 1 } } }, toyChunks())), status.INVALID_ARGUMENT, /base_model.head.classes must be an integer from 2 to 100000, got 1/],
        ["bad validation fraction", collect(client.train({ ...TOY, validationFraction: 1.5 }, toyChunks())), status.INVALID_ARGUMENT, /validation.fraction must be in \[0, 1\)/],
        ["missing output", collect(client.train({ ...TOY, output: "scores" }, toyChunks())), status.INVALID_ARGUMENT, /the model has no output "scores"/],
        ["a dense layer of 2^31 units", collect(client.train({ ...TOY, architecture: { input: { dims: [4] }, layers: [{ type: "dense", units: 2 ** 31 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 0 \(dense\): 2,147,483,648 units; a layer may have at most 16,777,216/],
        ["an input of 1e12 values", collect(client.train({ ...TOY, architecture: { input: { dims: [1e12] }, layers: [{ type: "dense", units: 3 }] } }, toyChunks())), status.INVALID_ARGUMENT, /input.dims: the input \[1000000000000\] has 1,000,000,000,000 values per row; at most 16,777,216/],
        ["parameters past the budget", collect(client.train({ ...TOY, architecture: { input: { dims: [4] }, layers: [{ type: "dense", units: 12_000 }, { type: "dense", units: 12_000 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 1 \(dense\): a parameter of 144,000,000 values would take the model past 100,000,000 trainable parameters/],
        ["an embedding past the budget", collect(client.train({ ...TOY, architecture: { input: { dims: [4], type: "int64" }, layers: [{ type: "embedding", vocab: 1e9, dim: 1000 }, { type: "meanpool" }, { type: "dense", units: 3 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 0 \(embedding\): a parameter of 1,000,000,000,000 values/],
        ["a layer output past the row limit", collect(client.train({ ...TOY, architecture: { input: { dims: [1, 4096, 4096] }, layers: [{ type: "conv2d", filters: 16, kernel: 1 }] } }, toyChunks())), status.INVALID_ARGUMENT, /layer 0 \(conv2d\): its output \[16, 4096, 4096\] has 268,435,456 values per row/],
        ["unknown checkpoint", collect(client.train({ ...TOY, resumeFrom: "0000/12" }, toyChunks())), status.NOT_FOUND, /checkpoint "0000\/12" not found/],
        ["diverging loss", collect(client.train({ ...TOY, optimizer: { type: "sgd", learningRate: 10 } }, [{ inputs: { input: Tensor.float32([4, 4], new Float32Array(16).fill(1e18)) }, labels: Tensor.int64([4], [0n, 1n, 2n, 0n]) }])), status.FAILED_PRECONDITION, /the loss became (NaN|Infinity|-Infinity) at step \d+ .*lower the learning rate/],
      ];
      for (const [name, run, code, message] of cases) {
        const { error, events } = await run;
        assert.ok(error, `${name}: the call should fail`);
        assert.equal(error.code, code, `${name}: ${error.message}`);
        assert.match(error.message, message, name);
        const failed = events.find((e) => e.type === "failed") as Extract<TrainEvent, { type: "failed" }> | undefined;
        if (failed) assert.equal(failed.code, code, `${name}: the failed event carries the status`);
      }
      // Raw protocol mistakes.
      const layerless = await rawTrain(h.server.address, [spec({ message: { $case: "spec", value: { model: "x", source: { $case: "architecture", value: { inputShape: [4n], layers: [{}] } } } } })]);
      assert.equal(layerless.code, status.INVALID_ARGUMENT);
      assert.match(layerless.details, /architecture.layers\[0\]: no layer kind set/);
      const dataFirst = await rawTrain(h.server.address, [spec({ message: { $case: "end", value: {} } })]);
      assert.equal(dataFirst.code, status.INVALID_ARGUMENT);
      assert.match(dataFirst.details, /the first message must be a TrainSpec/);
      const noSource = await rawTrain(h.server.address, [spec({ message: { $case: "spec", value: { model: "x" } } })]);
      assert.match(noSource.details, /set either architecture .* or base_model/);
      // Nothing half-trained was published by any of them.
      assert.deepEqual((await readdir(h.root)).sort(), ["affine", "cosine"]);
    },
    { training: { maxDataBytes: 1 << 20 } },
    { cosine: { model: cosModel }, affine: { model: affineModel() } },
  );
});

test("a job's data beyond the limit is RESOURCE_EXHAUSTED", async () => {
  await withServer(
    async (_h, client) => {
      const { error } = await collect(client.train(TOY, toyChunks(2000, 500)));
      assert.equal(error?.code, status.RESOURCE_EXHAUSTED);
      assert.match(error!.message, /chunk 1: the job's data would exceed its limit of 20000 bytes/);
    },
    { training: { maxDataBytes: 20_000 } },
  );
});

test("two jobs and Predict traffic at once all finish", async () => {
  await withServer(
    async (_h, client) => {
      let predictions = 0;
      let stop = false;
      const traffic = (async () => {
        while (!stop) {
          const r = await client.predict("affine", { x: Tensor.float32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) });
          assert.deepEqual(Array.from(r.outputs.y!.data as Float32Array), [3, 6, 9, 12, 11, 14, 17, 20]);
          predictions++;
        }
      })();
      const [a, b] = await Promise.all([collect(client.train({ ...TOY, model: "a" }, toyChunks())), collect(client.train({ ...TOY, model: "b", seed: 2 }, toyChunks()))]);
      stop = true;
      await traffic;
      assert.equal(a.error, undefined);
      assert.equal(b.error, undefined);
      assert.ok(predictions > 10, `${predictions} predictions ran meanwhile`);
      const [ra, rb] = await Promise.all([client.predict("a", { input: Tensor.float32([1, 4], [1.5, 0, 0, 0]) }), client.predict("b", { input: Tensor.float32([1, 4], [0, 1.5, 0, 0]) })]);
      assert.deepEqual(ra.outputs.probabilities!.shape, [1, 3]);
      assert.deepEqual(rb.outputs.probabilities!.shape, [1, 3]);
    },
    { training: { maxConcurrentJobs: 2 } },
    { affine: { model: affineModel() } },
  );
});

/** 8x8 images, 3 classes: class k brightens band k of the image (top, middle, bottom rows), plus noise. */
function bandImages(count: number, seed: number): { x: Float32Array; y: BigInt64Array } {
  const random = seededRandom(seed);
  const x = new Float32Array(count * 64);
  const y = new BigInt64Array(count);
  for (let n = 0; n < count; n++) {
    const k = Math.floor(random() * 3);
    y[n] = BigInt(k);
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) x[n * 64 + r * 8 + c] = (Math.floor(r / 3) === k ? 0.8 : 0) + random() * 0.4;
  }
  return { x, y };
}

async function accuracy(client: AiaasClient, model: string, version: string, data: { x: Float32Array; y: BigInt64Array }): Promise<number> {
  const rows = data.y.length;
  const r = await client.predict(model, { input: Tensor.float32([rows, 1, 8, 8], data.x) }, { version });
  const logits = r.outputs.logits!.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const row = Array.from(logits.subarray(i * 3, i * 3 + 3));
    if (BigInt(row.indexOf(Math.max(...row))) === data.y[i]) correct++;
  }
  return correct / rows;
}

test("fine-tuning a PyTorch-exported model from the repository improves its held-out accuracy", async () => {
  const exported = await readFile(join(import.meta.dirname, "fixtures", "torch-export", "cnn.onnx"));
  await withServer(
    async (h, client) => {
      const heldOut = bandImages(300, 77);
      const before = await accuracy(client, "torch-cnn", "1", heldOut);
      const train = bandImages(900, 78);
      const chunks = function* (): Generator<TrainChunk> {
        for (let s = 0; s < 900; s += 300) {
          yield { inputs: { input: Tensor.float32([300, 1, 8, 8], train.x.slice(s * 64, (s + 300) * 64)) }, labels: Tensor.int64([300], train.y.slice(s, s + 300)) };
        }
      };
      const { events, error } = await collect(
        client.train({ model: "torch-cnn", baseModel: { name: "torch-cnn", freeze: ["conv."] }, epochs: 8, batchSize: 32, optimizer: { type: "adamw", learningRate: 3e-3 } }, chunks()),
      );
      assert.equal(error, undefined);
      const done = events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
      assert.equal(done.version, "2");
      const after = await accuracy(client, "torch-cnn", "2", heldOut);
      assert.ok(after >= 0.9 && after > before + 0.3, `held-out accuracy ${before} -> ${after}`);
      assert.deepEqual((await client.models.get("torch-cnn")).versions.map((v) => v.version).sort(), ["1", "2"]);
      // The frozen convolution is served unchanged; the dense layers moved.
      const [w1, w2] = [await initializers(join(h.root, "torch-cnn", "1", "model.onnx")), await initializers(join(h.root, "torch-cnn", "2", "model.onnx"))];
      assert.deepEqual(w2.get("conv.weight"), w1.get("conv.weight"));
      assert.notDeepEqual(w2.get("fc2.weight"), w1.get("fc2.weight"));
    },
    {},
    { "torch-cnn": { model: new Uint8Array(exported), config: { version_policy: { all: true }, max_batch_size: 512 } } },
  );
});

test("fine-tuning an export whose layers share merged initializers: the first event lists them; untied, each is published as its own tensor", async () => {
  const exported = await readFile(join(import.meta.dirname, "fixtures", "torch-export", "transformer-shared.onnx"));
  const random = seededRandom(11);
  const tokens = BigInt64Array.from({ length: 64 * 6 }, () => BigInt(Math.floor(random() * 13)));
  const labels = BigInt64Array.from({ length: 64 }, (_, r) => tokens[r * 6]! % 3n);
  const chunks = (): TrainChunk[] => [{ inputs: { input: Tensor.int64([64, 6], tokens) }, labels: Tensor.int64([64], labels) }];
  await withServer(
    async (h, client) => {
      const shared = await collect(client.train({ model: "enc", baseModel: { name: "enc" }, epochs: 2, batchSize: 16 }, chunks()));
      assert.equal(shared.error, undefined);
      const first = shared.events[0]!;
      assert.equal(first.type, "prepared", "the job's first event says what it trains");
      const prepared = first as Extract<TrainEvent, { type: "prepared" }>;
      const bias = prepared.shared.find((s) => s.parameter === "encoder.layers.0.self_attn.out_proj.bias");
      assert.ok(bias && bias.readAs.includes("encoder.layers.1.norm2.bias"), JSON.stringify(prepared.shared));
      assert.deepEqual(prepared.frozen, []);
      assert.equal(prepared.trainedTensors, 12);
      const untied = await collect(client.train({ model: "enc", baseModel: { name: "enc", version: "1", untieSharedParameters: true }, epochs: 2, batchSize: 16 }, chunks()));
      assert.equal(untied.error, undefined);
      const note = (untied.events[0] as Extract<TrainEvent, { type: "prepared" }>).notes.join(" ");
      assert.match(note, /untied 15 shared parameters/);
      const v1 = await initializers(join(h.root, "enc", "1", "model.onnx"));
      const v3 = await initializers(join(h.root, "enc", "3", "model.onnx"));
      // Each reader is its own trained tensor: layer 1's norm bias no longer equals layer 0's out_proj bias.
      assert.ok(!v1.has("encoder.layers.1.norm2.bias") && v3.has("encoder.layers.1.norm2.bias"));
      assert.notDeepEqual(v3.get("encoder.layers.1.norm2.bias"), v3.get("encoder.layers.0.self_attn.out_proj.bias"));
      const out = await client.predict("enc", { input: Tensor.int64([2, 6], tokens.slice(0, 12)) }, { version: "3" });
      assert.equal(out.version, "3");
      assert.deepEqual([...out.outputs.logits!.shape], [2, 3]);
    },
    {},
    { enc: { model: new Uint8Array(exported), config: { version_policy: { all: true } } } },
  );
});

test("a leftover staging folder from a crash mid-publish is no model and no version; the next publish succeeds", async () => {
  await withServer(async (h, client) => {
    const { mkdir, writeFile } = await import("node:fs/promises");
    // As kill -9 during a publish would leave them: a new model's staging folder and a version's.
    await mkdir(join(h.root, ".publish-crashed", "1"), { recursive: true });
    await writeFile(join(h.root, ".publish-crashed", "1", "model.onnx"), new Uint8Array([1, 2, 3]));
    await client.train({ ...TOY, epochs: 1 }, toyChunks())[Symbol.asyncIterator]().next(); // starts a job
    await waitFor(async () => (await client.jobs.list())[0]!.state === "succeeded");
    await mkdir(join(h.root, "toy", ".publish-crashed"), { recursive: true });
    await writeFile(join(h.root, "toy", ".publish-crashed", "model.onnx"), new Uint8Array([1, 2, 3]));
    assert.deepEqual((await client.models.list()).map((m) => m.name), ["toy"]);
    await client.models.load("toy");
    assert.deepEqual((await client.models.get("toy")).versions.map((v) => v.version), ["1"]);
    const next = await collect(client.train({ ...TOY, epochs: 1 }, toyChunks()));
    assert.equal((next.events.find((e) => e.type === "completed") as { version: string }).version, "2");
  });
});

test("limits and early stopping end a job early and still publish; regression fits float targets", async () => {
  await withServer(async (h, client) => {
    const limited = await collect(client.train({ ...TOY, epochs: 50, maxSteps: 7 }, toyChunks()));
    const done = limited.events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
    assert.equal(done.stopReason, "max_steps");
    assert.equal(done.metrics.steps, 7);

    // An improvement of 10 in validation loss is impossible: patience 2 stops after epoch 3, and the weights
    // published are epoch 1's, the best validation.
    const val = toyRows(100, 61);
    const stopped = await collect(
      client.train({ ...TOY, epochs: 50, earlyStopping: { metric: "loss", patience: 2, minDelta: 10 } }, [
        ...toyChunks(),
        { inputs: { input: Tensor.float32([100, 4], val.x) }, labels: Tensor.int64([100], val.y), validation: true },
      ]),
    );
    const early = stopped.events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
    assert.equal(early.stopReason, "early_stopping");
    const validations = stopped.events.filter((e) => e.type === "validation") as Extract<TrainEvent, { type: "validation" }>[];
    assert.equal(validations.length, 3);
    assert.equal(early.metrics.validationLoss, validations[0]!.loss);
    assert.equal(JSON.parse(await readFile(join(h.root, "toy", early.version, "metrics.json"), "utf8")).weightsOfEpoch, 1);
    // The served version scores the validation rows as epoch 1 did, not as the last epoch did.
    let loss = 0;
    for (let s = 0; s < 100; s += 50) {
      const served = await client.predict("toy", { input: Tensor.float32([50, 4], val.x.subarray(s * 4, (s + 50) * 4)) }, { version: early.version });
      const p = served.outputs.probabilities!.data as Float32Array;
      for (let i = 0; i < 50; i++) loss -= Math.log(p[i * 3 + Number(val.y[s + i])]!) / 100;
    }
    assert.ok(Math.abs(loss - validations[0]!.loss) < 1e-4, `served loss ${loss}, epoch 1 ${validations[0]!.loss}, epoch 3 ${validations[2]!.loss}`);
    assert.ok(Math.abs(validations[2]!.loss - validations[0]!.loss) > 1e-3, "later epochs moved the weights");

    const timed = await collect(client.train({ ...TOY, epochs: 10_000, maxSeconds: 1 }, toyChunks()));
    assert.equal((timed.events.find((e) => e.type === "completed") as { stopReason: string }).stopReason, "max_seconds");

    // Regression: y = x0 - 2 x1 + 0.5 from 2 features, validation sent as marked chunks.
    const random = seededRandom(3);
    const make = (n: number, validation: boolean): TrainChunk => {
      const x = Float32Array.from({ length: n * 2 }, () => random() * 2 - 1);
      const y = Float32Array.from({ length: n }, (_, i) => x[2 * i]! - 2 * x[2 * i + 1]! + 0.5);
      return { inputs: { input: Tensor.float32([n, 2], x) }, labels: Tensor.float32([n, 1], y), validation };
    };
    const regression = await collect(
      client.train(
        { model: "line", task: "regression", architecture: { input: { dims: [2] }, layers: [{ type: "dense", units: 1 }] }, epochs: 60, batchSize: 16, optimizer: { type: "adam", learningRate: 0.05 } },
        [make(200, false), make(50, true)],
      ),
    );
    assert.equal(regression.error, undefined);
    const fit = regression.events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }>;
    assert.equal(fit.metrics.validationRows, 50);
    assert.ok(fit.metrics.validationLoss < 1e-3, `validation MSE ${fit.metrics.validationLoss}`);
    const r = await client.predict("line", { input: Tensor.float32([1, 2], [0.5, 0.25]) });
    assert.ok(Math.abs((r.outputs.logits!.data as Float32Array)[0]! - 0.5) < 0.05);
    assert.equal(r.outputs.probabilities, undefined, "a regression model has no probabilities output");
  });
});
