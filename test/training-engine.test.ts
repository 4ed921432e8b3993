// The engine's own contracts: IR round trips, errors that name what is wrong, every layer training, the
// runner's state, resume and provider fallback.
import assert from "node:assert/strict";
import { probeCuda } from "../server/src/cuda-probe.js";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ort from "onnxruntime-node";
import {
  ArchitectureError,
  Graph,
  LAYER_TYPES,
  buildArchitecture,
  buildTrainProgram,
  createTrainRunner,
  decodeModel,
  encodeModel,
  type ArchitectureSpec,
  type ConstTensor,
} from "../server/src/training/index.js";
import { seededRandom } from "../scripts/seeded-random.js";

const root = join(import.meta.dirname, "..");
const LOSS = { kind: "cross-entropy", output: "logits" } as const;

function randomFeeds(spec: ArchitectureSpec, batch: number, classes: number, seed: number): Record<string, ConstTensor> {
  const random = seededRandom(seed);
  const dims = [batch, ...spec.input.dims];
  const count = dims.reduce((a, b) => a * b, 1);
  const data =
    spec.input.type === "int64"
      ? BigInt64Array.from({ length: count }, () => BigInt(Math.floor(random() * 9)))
      : Float32Array.from({ length: count }, () => random() * 2 - 1);
  return {
    [spec.input.name ?? "input"]: { type: spec.input.type ?? "float32", dims, data },
    labels: { type: "int64", dims: [batch], data: BigInt64Array.from({ length: batch }, () => BigInt(Math.floor(random() * classes))) },
  };
}

const copy = (feeds: Record<string, ConstTensor>): Record<string, ConstTensor> =>
  Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { ...v, data: v.data.slice() }]));

test("IR: every committed ONNX file reads into the IR and writes back a model ORT loads, with the same outputs", async () => {
  const files = [
    ...readdirSync(join(root, "test/fixtures/torch-export")).filter((f) => f.endsWith(".onnx")).map((f) => join(root, "test/fixtures/torch-export", f)),
    join(root, "models/mnist-cnn/1/model.onnx"),
    join(root, "models/mnist-linear/1/model.onnx"),
  ];
  for (const file of files) {
    const original = readFileSync(file);
    const rewritten = encodeModel(Graph.fromModel(decodeModel(original)).toModel());
    const a = await ort.InferenceSession.create(original);
    const b = await ort.InferenceSession.create(rewritten);
    assert.deepEqual(b.inputNames, a.inputNames, file);
    assert.deepEqual(b.outputNames, a.outputNames, file);
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of Graph.fromModel(decodeModel(original)).inputs) {
      const dims = (input.dims ?? []).map((d) => (typeof d === "number" ? d : 2));
      const n = dims.reduce((x, y) => x * y, 1);
      feeds[input.name] =
        input.type === "int64"
          ? new ort.Tensor("int64", BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 5)), dims)
          : new ort.Tensor("float32", Float32Array.from({ length: n }, (_, i) => Math.sin(i)), dims);
    }
    const [ra, rb] = [await a.run(feeds), await b.run(feeds)];
    for (const name of a.outputNames) assert.deepEqual(rb[name]!.data, ra[name]!.data, `${file}: ${name}`);
    await a.release();
    await b.release();
  }
});

test("autodiff: an op without a gradient rule between parameters and loss is an error naming the op and node; freezing past it works", () => {
  const g = new Graph("cosine");
  g.addInput("input", "float32", ["batch", 4]);
  g.addInitializer("w", { type: "float32", dims: [3, 4], data: new Float32Array(12).fill(0.1) });
  g.addInitializer("head", { type: "float32", dims: [3, 3], data: new Float32Array(9).fill(0.2) });
  const h = g.add("Cos", [g.op("Gemm", ["input", "w"], { transB: 1 })], { name: "the_cosine" })[0]!;
  g.add("MatMul", [h, "head"], { outputs: ["logits"] });
  g.addOutput("logits");
  const model = g.toModel();
  assert.throws(() => buildTrainProgram(model, { loss: LOSS, optimizer: { type: "sgd" } }), /no gradient rule for op Cos \(node "the_cosine"\)/);
  const program = buildTrainProgram(model, { loss: LOSS, optimizer: { type: "sgd" }, freeze: ["w"] });
  assert.deepEqual(program.params.map((p) => p.name), ["head"]);
});

test("an output whose shape the engine cannot infer is an error naming the op where inference stopped", () => {
  const g = new Graph("mystery");
  g.addInput("input", "float32", ["batch", 4]);
  g.addInitializer("w", { type: "float32", dims: [3, 4], data: new Float32Array(12).fill(0.1) });
  const h = g.add("Warp", [g.op("Gemm", ["input", "w"], { transB: 1 })], { name: "the_warp" })[0]!;
  g.add("Relu", [h], { outputs: ["logits"] });
  g.addOutput("logits");
  assert.throws(
    () => buildTrainProgram(g.toModel(), { loss: LOSS, optimizer: { type: "sgd" } }),
    /loss: the rank of output "logits" must be known, and shape inference stops at Warp node "the_warp" \(the engine has no shape rule for this op\)/,
  );
});

test("layers: a bad spec fails when it is built, naming the layer and the problem", () => {
  const cases: [ArchitectureSpec, RegExp][] = [
    [{ input: { dims: [4] }, layers: [{ type: "dense", units: 3 }, { type: "convolution" } as never] }, /layer 1 \(convolution\): unknown layer type "convolution"/],
    [{ input: { dims: [1, 8, 8] }, layers: [{ type: "dense", units: 3 }] }, /layer 0 \(dense\): expects an input of rank 2 or 3 .*add a flatten layer/],
    [{ input: { dims: [4, 6] }, layers: [{ type: "attention", heads: 4 }] }, /layer 0 \(attention\): width 6 is not divisible by 4 heads/],
    [{ input: { dims: [5] }, layers: [{ type: "embedding", vocab: 10, dim: 4 }] }, /layer 0 \(embedding\): takes int64 token ids/],
    [{ input: { dims: [1, 4, 4] }, layers: [{ type: "conv2d", filters: 2, kernel: 5 }] }, /layer 0 \(conv2d\): a 5x5 kernel does not fit the 4x4 input/],
    [{ input: { dims: [4] }, layers: [{ type: "dense", units: 0 }] }, /layer 0 \(dense\): units must be a positive integer/],
    [{ input: { dims: [4, 8] }, layers: [{ type: "dense", units: 3 }] }, /classification needs \[batch, classes\] logits/],
    [{ input: { dims: [4] }, layers: [{ type: "dropout", rate: 1.5 }] }, /layer 0 \(dropout\): rate must be in \[0, 1\)/],
  ];
  for (const [spec, message] of cases) assert.throws(() => buildArchitecture(spec), (e: unknown) => e instanceof ArchitectureError && message.test(e.message));
});

const everyLayer: ArchitectureSpec[] = [
  {
    input: { name: "image", dims: [2, 8, 8] },
    layers: [
      { type: "conv2d", filters: 4, kernel: 3, padding: "same" },
      { type: "tanh" },
      { type: "avgpool2d", size: 2 },
      { type: "conv2d", filters: 6, kernel: 3, stride: 2, padding: 1 },
      { type: "sigmoid" },
      { type: "maxpool2d", size: 2 },
      { type: "flatten" },
      { type: "dropout", rate: 0.2 },
      { type: "dense", units: 8 },
      { type: "relu" },
      { type: "dense", units: 3 },
    ],
  },
  {
    input: { dims: [6], type: "int64" },
    layers: [
      { type: "embedding", vocab: 9, dim: 8 },
      { type: "rnn", units: 8, returnSequences: true },
      { type: "attention", heads: 2 },
      { type: "layernorm" },
      { type: "gelu" },
      { type: "transformer", heads: 2, feedForward: 12, dropout: 0.1, activation: "gelu" },
      { type: "meanpool" },
      { type: "dense", units: 3 },
    ],
  },
];

test("dropout is seeded from the spec's seed: two runs of a job with the same seed end bit for bit alike", async () => {
  const spec: ArchitectureSpec = { input: { dims: [16] }, layers: [{ type: "dense", units: 32 }, { type: "dropout", rate: 0.5 }, { type: "relu" }, { type: "dense", units: 3 }] };
  const feeds = randomFeeds(spec, 12, 3, 7);
  const trainedLoss = async (seed: number): Promise<number> => {
    const runner = await createTrainRunner(buildTrainProgram(buildArchitecture(spec, { seed }), { loss: LOSS, optimizer: { type: "adam" } }), { threads: 1 });
    try {
      for (let s = 0; s < 30; s++) await runner.step(copy(feeds), 0.01);
      return (await runner.evaluate(copy(feeds))).loss;
    } finally {
      await runner.close();
    }
  };
  // Unseeded, ONNX Runtime's Dropout draws other masks in every session, and the losses differ.
  assert.equal(await trainedLoss(5), await trainedLoss(5), "the same seed repeats exactly");
});

test("layers: specs using every layer type train (loss falls, the batch is learned) and evaluate deterministically", async () => {
  const used = new Set(everyLayer.flatMap((s) => s.layers.map((l) => l.type)));
  assert.deepEqual([...LAYER_TYPES].filter((t) => !used.has(t)), [], "every layer type is exercised");
  for (const [i, spec] of everyLayer.entries()) {
    const program = buildTrainProgram(buildArchitecture(spec, { seed: 3 }), { loss: LOSS, optimizer: { type: "adamw", weightDecay: 0.01 } });
    const runner = await createTrainRunner(program, { threads: 1 });
    try {
      const feeds = randomFeeds(spec, 12, 3, 40 + i);
      const before = await runner.evaluate(copy(feeds));
      assert.deepEqual(await runner.evaluate(copy(feeds)), before, "evaluation has no dropout randomness");
      for (let s = 0; s < 80; s++) await runner.step(copy(feeds), 0.01);
      const after = await runner.evaluate(copy(feeds));
      assert.ok(after.loss < before.loss * 0.5, `spec ${i}: eval loss ${before.loss} -> ${after.loss}`);
      assert.ok(after.correct! >= 11, `spec ${i}: ${after.correct}/12 learned`);
      // The exported inference model agrees with the eval graph.
      const session = await ort.InferenceSession.create(encodeModel(await runner.exportModel()));
      const inputName = spec.input.name ?? "input";
      const f = feeds[inputName]!;
      const out = await session.run({ [inputName]: new ort.Tensor(f.type as "float32", f.data as Float32Array, [...f.dims]) });
      const probs = out.probabilities!.data as Float32Array;
      let correct = 0;
      (feeds.labels!.data as BigInt64Array).forEach((label, r) => {
        const row = Array.from(probs.subarray(r * 3, r * 3 + 3));
        if (BigInt(row.indexOf(Math.max(...row))) === label) correct++;
      });
      assert.equal(correct, after.correct);
      await session.release();
    } finally {
      await runner.close();
    }
  }
});

test("runner: state restored into a new runner continues exactly as the uninterrupted run", async () => {
  const spec = everyLayer[1]!;
  const build = () => buildTrainProgram(buildArchitecture({ ...spec, layers: spec.layers.map((l) => (l.type === "transformer" ? { ...l, dropout: 0 } : l)) }, { seed: 5 }), {
    loss: LOSS,
    optimizer: { type: "adam" },
  });
  const batches = [0, 1, 2, 3, 4].map((k) => randomFeeds(spec, 8, 3, 70 + k));
  const a = await createTrainRunner(build(), { threads: 1 });
  for (const b of batches) await a.step(copy(b), 1e-3);
  const straight = await a.parameters();
  await a.close();

  const b1 = await createTrainRunner(build(), { threads: 1 });
  for (const b of batches.slice(0, 3)) await b1.step(copy(b), 1e-3);
  const checkpoint = await b1.state();
  const steps = b1.steps;
  await b1.close();
  const b2 = await createTrainRunner(build(), { threads: 1 });
  await b2.restore(checkpoint, steps);
  for (const b of batches.slice(3)) await b2.step(copy(b), 1e-3);
  const resumed = await b2.parameters();
  await b2.close();
  assert.equal(b2.steps, 5);
  for (const [name, t] of straight) assert.deepEqual(resumed.get(name)!.data, t.data, name);
});

test("runner: asked for CUDA, trains on CUDA where it works and on CPU (saying why) where not, with the CPU run's numbers", async () => {
  const spec = { input: { dims: [4] }, layers: [{ type: "dense" as const, units: 2 }] };
  const program = buildTrainProgram(buildArchitecture(spec, { seed: 3 }), { loss: LOSS, optimizer: { type: "sgd" } });
  const cuda = await probeCuda();
  const asked = await createTrainRunner(program, { providers: ["cuda", "cpu"] });
  const cpu = await createTrainRunner(program, { providers: ["cpu"] });
  try {
    if (cuda.available) {
      assert.equal(asked.provider, "cuda");
      assert.equal(asked.fallbackReason, undefined);
    } else {
      assert.equal(asked.provider, "cpu");
      assert.match(asked.fallbackReason ?? "", /cuda unavailable/i);
    }
    // The same steps on the same batches give the CPU run's losses and weights (exactly on CPU, to float
    // rounding on a GPU).
    const tolerance = cuda.available ? 1e-5 : 0;
    for (let k = 0; k < 3; k++) {
      const [a, b] = [await asked.step(randomFeeds(spec, 4, 2, k), 0.1), await cpu.step(randomFeeds(spec, 4, 2, k), 0.1)];
      assert.ok(Math.abs(a.loss - b.loss) <= tolerance, `step ${k + 1}: loss ${a.loss} vs CPU ${b.loss}`);
    }
    const [pa, pb] = [await asked.parameters(), await cpu.parameters()];
    for (const [name, t] of pb) {
      const x = pa.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(x[i]! - v) <= tolerance, `${name}[${i}]: ${x[i]} vs CPU ${v}`));
    }
  } finally {
    await asked.close();
    await cpu.close();
  }
});
