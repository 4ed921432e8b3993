// Every gradient rule against central finite differences, on several shapes including broadcasting.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gradCheck, type GradCase } from "./support/gradcheck.js";
import ort from "onnxruntime-node";
import { reduceMean } from "../server/src/training/autodiff/grad-ops.js";
import { appendBackward } from "../server/src/training/autodiff/backward.js";
import { Graph } from "../server/src/training/onnx/graph.js";
import { encodeModel } from "../server/src/training/onnx/model-file.js";

const unary = (op: string, positive = false, attrs?: Record<string, number>): GradCase[] =>
  [[3, 4], [2, 3, 5]].map((dims) => ({
    name: `${op} ${JSON.stringify(dims)}`,
    positive,
    inputs: [{ name: "x", dims }],
    build: (g, [x]) => g.op(op, [x!], attrs),
  }));

const binary = (op: string, positive = false): GradCase[] =>
  [
    [[3, 4], [3, 4]],
    [[2, 3, 4], [4]],
    [[3, 1], [1, 4]],
    [[2, 1, 4], [3, 1]],
    [[], [2, 3]],
  ].map(([a, b]) => ({
    name: `${op} ${JSON.stringify(a)} ${JSON.stringify(b)}`,
    positive,
    inputs: [
      { name: "a", dims: a! },
      { name: "b", dims: b! },
    ],
    build: (g, [x, y]) => g.op(op, [x!, y!]),
  }));

const cases: GradCase[] = [
  ...binary("Add"),
  ...binary("Sub"),
  ...binary("Mul"),
  ...binary("Div", true),
  ...binary("Pow", true),
  ...unary("Neg"),
  // Relu away from its kink: values shifted from 0
  {
    name: "Relu [3,4]",
    inputs: [{ name: "x", dims: [3, 4], values: [-0.9, 0.3, 0.8, -0.2, 0.5, -0.6, 0.7, 0.1, -0.4, 0.9, -0.3, 0.6] }],
    build: (g, [x]) => g.op("Relu", [x!]),
  },
  ...unary("Tanh"),
  ...unary("Sigmoid"),
  ...unary("Erf"),
  ...unary("Exp"),
  ...unary("Log", true),
  ...unary("Sqrt", true),
  ...unary("Softmax", false, { axis: 1 }),
  ...unary("Softmax", false, { axis: -1 }),
  ...unary("LogSoftmax", false, { axis: 1 }),
  ...unary("Identity"),
  {
    name: "Cast float->float",
    inputs: [{ name: "x", dims: [2, 3] }],
    build: (g, [x]) => g.op("Mul", [g.op("Cast", [x!], { to: g.typeOf(x!).type === "float64" ? 11 : 1 }), x!]),
  },
  {
    name: "Gelu by Erf",
    inputs: [{ name: "x", dims: [2, 5] }],
    build: (g, [x]) => {
      const half = g.scalarLike(0.5, x!);
      const e = g.op("Erf", [g.op("Mul", [x!, g.scalarLike(Math.SQRT1_2, x!)])]);
      return g.op("Mul", [g.op("Mul", [x!, half]), g.op("Add", [e, g.scalarLike(1, x!)])]);
    },
  },
  ...[
    [[3, 4], [4, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [4, 3]],
    [[3, 4], [4]],
  ].map(([a, b]): GradCase => ({
    name: `MatMul ${JSON.stringify(a)} ${JSON.stringify(b)}`,
    inputs: [
      { name: "a", dims: a! },
      { name: "b", dims: b! },
    ],
    build: (g, [x, y]) => g.op("MatMul", [x!, y!]),
  })),
  ...[
    { transA: 0, transB: 0, a: [3, 4], b: [4, 5], c: [5] },
    { transA: 1, transB: 0, a: [4, 3], b: [4, 5], c: [3, 5] },
    { transA: 0, transB: 1, a: [3, 4], b: [5, 4], c: [1, 5] },
    { transA: 1, transB: 1, a: [4, 3], b: [5, 4], c: [] },
  ].map(({ transA, transB, a, b, c }): GradCase => ({
    name: `Gemm transA=${transA} transB=${transB} C${JSON.stringify(c)}`,
    inputs: [
      { name: "a", dims: a },
      { name: "b", dims: b },
      { name: "c", dims: c },
    ],
    build: (g, [x, y, z]) => g.op("Gemm", [x!, y!, z!], { transA, transB, alpha: { float: 0.7 }, beta: { float: 1.3 } }),
  })),
  ...[
    { x: [2, 3, 6, 6], w: [4, 3, 3, 3], pads: [1, 1, 1, 1], strides: [1, 1] },
    { x: [2, 2, 7, 7], w: [3, 2, 3, 3], pads: [0, 0, 0, 0], strides: [2, 2] },
    { x: [1, 2, 6, 5], w: [2, 2, 2, 3], pads: [1, 0, 0, 1], strides: [1, 2] },
  ].map(({ x, w, pads, strides }): GradCase => ({
    name: `Conv x${JSON.stringify(x)} w${JSON.stringify(w)} pads${JSON.stringify(pads)} strides${JSON.stringify(strides)}`,
    inputs: [
      { name: "x", dims: x },
      { name: "w", dims: w },
      { name: "b", dims: [w[0]!] },
    ],
    build: (g, [xi, wi, bi]) => g.op("Conv", [xi!, wi!, bi!], { pads, strides }),
  })),
  {
    name: "MaxPool 2x2 stride 2",
    inputs: [{ name: "x", dims: [2, 2, 4, 4] }],
    build: (g, [x]) => g.op("MaxPool", [x!], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  {
    name: "MaxPool 3x3 stride 1 (overlapping) pads 1",
    inputs: [{ name: "x", dims: [1, 2, 4, 4] }],
    build: (g, [x]) => g.op("MaxPool", [x!], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }),
  },
  {
    name: "AveragePool 2x2 stride 2",
    inputs: [{ name: "x", dims: [2, 3, 4, 4] }],
    build: (g, [x]) => g.op("AveragePool", [x!], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  {
    name: "AveragePool 3x3 stride 2 pads 1 count_include_pad",
    inputs: [{ name: "x", dims: [1, 2, 5, 5] }],
    build: (g, [x]) => g.op("AveragePool", [x!], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }),
  },
  {
    name: "GlobalAveragePool",
    inputs: [{ name: "x", dims: [2, 3, 3, 4] }],
    build: (g, [x]) => g.op("GlobalAveragePool", [x!]),
  },
  { name: "Flatten", inputs: [{ name: "x", dims: [2, 3, 4] }], build: (g, [x]) => g.op("Flatten", [x!], { axis: 2 }) },
  { name: "Reshape", inputs: [{ name: "x", dims: [2, 3, 4] }], build: (g, [x]) => g.op("Reshape", [x!, g.ints([4, -1])]) },
  { name: "Transpose", inputs: [{ name: "x", dims: [2, 3, 4] }], build: (g, [x]) => g.op("Transpose", [x!], { perm: [2, 0, 1] }) },
  { name: "Squeeze", inputs: [{ name: "x", dims: [2, 1, 4] }], build: (g, [x]) => g.op("Squeeze", [x!, g.ints([1])]) },
  { name: "Unsqueeze", inputs: [{ name: "x", dims: [2, 4] }], build: (g, [x]) => g.op("Unsqueeze", [x!, g.ints([0, 2])]) },
  {
    name: "Concat axis 1",
    inputs: [
      { name: "a", dims: [2, 3] },
      { name: "b", dims: [2, 2] },
    ],
    build: (g, [a, b]) => g.op("Concat", [a!, b!, a!], { axis: 1 }),
  },
  {
    name: "Slice with steps and negative starts",
    inputs: [{ name: "x", dims: [4, 6] }],
    build: (g, [x]) => g.op("Slice", [x!, g.ints([-1, 1]), g.ints([-5, 6]), g.ints([0, 1]), g.ints([-1, 2])]),
  },
  {
    name: "Gather rows with repeats (embedding)",
    inputs: [
      { name: "table", dims: [5, 3] },
      { name: "idx", dims: [2, 3], ints: [0, 4, 2, 2, -1, 1] },
    ],
    build: (g, [t, i]) => g.op("Gather", [t!, i!], { axis: 0 }),
  },
  {
    name: "ReduceMean axes 1 keepdims 0",
    inputs: [{ name: "x", dims: [2, 3, 4] }],
    build: (g, [x]) => reduceMean(g, x!, [1], false),
  },
  {
    name: "ReduceMean all",
    inputs: [{ name: "x", dims: [2, 3] }],
    build: (g, [x]) => g.op("ReduceMean", [x!], { keepdims: 1 }),
  },
  {
    name: "ReduceSum axes [0,2] keepdims 1",
    inputs: [{ name: "x", dims: [2, 3, 4] }],
    build: (g, [x]) => g.op("ReduceSum", [x!, g.ints([0, 2])], { keepdims: 1 }),
  },
  {
    name: "LayerNormalization last axis",
    inputs: [
      { name: "x", dims: [2, 3, 4] },
      { name: "scale", dims: [4] },
      { name: "bias", dims: [4] },
    ],
    build: (g, [x, s, b]) => g.op("LayerNormalization", [x!, s!, b!], { axis: -1, epsilon: { float: 1e-5 } }),
  },
  {
    name: "LayerNormalization axis 1",
    inputs: [
      { name: "x", dims: [2, 3, 4] },
      { name: "scale", dims: [3, 4] },
      { name: "bias", dims: [3, 4] },
    ],
    build: (g, [x, s, b]) => g.op("LayerNormalization", [x!, s!, b!], { axis: 1, epsilon: { float: 1e-5 } }),
  },
  {
    name: "Dropout training mode (mask fixed by ratio 0 keeps the check deterministic)",
    inputs: [{ name: "x", dims: [3, 4] }],
    build: (g, [x]) =>
      g.add("Dropout", [x!, g.scalarLike(0, x!), g.constant([1], "bool", [])], { outputs: [g.fresh("drop"), g.fresh("mask")] })[0]!,
  },
  {
    name: "SoftmaxCrossEntropyLoss mean",
    inputs: [
      { name: "scores", dims: [4, 5] },
      { name: "labels", dims: [4], ints: [0, 3, 4, 1] },
    ],
    build: (g, [s, l]) => g.op("SoftmaxCrossEntropyLoss", [s!, l!], { reduction: "mean" }),
  },
  {
    name: "SoftmaxCrossEntropyLoss none with ignore_index",
    inputs: [
      { name: "scores", dims: [4, 3] },
      { name: "labels", dims: [4], ints: [0, -1, 2, 1] },
    ],
    build: (g, [s, l]) => g.op("SoftmaxCrossEntropyLoss", [s!, l!], { reduction: "none", ignore_index: -1 }),
  },
  {
    name: "SoftmaxCrossEntropyLoss sum, scores [N,C,T]",
    inputs: [
      { name: "scores", dims: [2, 3, 2] },
      { name: "labels", dims: [2, 2], ints: [0, 2, 1, 1] },
    ],
    build: (g, [s, l]) => g.op("SoftmaxCrossEntropyLoss", [s!, l!], { reduction: "sum" }),
  },
  {
    name: "MSE as Sub, Mul, ReduceMean",
    inputs: [
      { name: "pred", dims: [3, 2] },
      { name: "target", dims: [3, 2], check: false },
    ],
    build: (g, [p, t]) => {
      const d = g.op("Sub", [p!, t!]);
      return g.op("ReduceMean", [g.op("Mul", [d, d])], { keepdims: 0 });
    },
  },
  {
    name: "Where",
    inputs: [
      { name: "a", dims: [2, 3] },
      { name: "b", dims: [3] },
    ],
    build: (g, [a, b]) => g.op("Where", [g.op("Greater", [a!, g.scalarLike(0, a!)]), a!, b!]),
  },
  {
    name: "Expand",
    inputs: [{ name: "x", dims: [3, 1] }],
    build: (g, [x]) => g.op("Expand", [x!, g.ints([2, 3, 4])]),
  },
  {
    name: "Split",
    inputs: [{ name: "x", dims: [2, 5] }],
    build: (g, [x]) => {
      const [a, b] = g.add("Split", [x!, g.ints([2, 3])], { outputs: 2, attrs: { axis: 1 } });
      return g.op("MatMul", [g.op("Transpose", [a!]), b!]);
    },
  },
  {
    name: "HardSigmoid alpha 0.4 beta 0.3 (values off its kinks at -0.75 and 1.75)",
    inputs: [{ name: "x", dims: [3, 4], values: [-0.9, 0.3, 0.8, -0.2, 0.5, -0.6, 1.9, 0.1, -0.4, 2.4, -1.3, 0.6] }],
    build: (g, [x]) => g.op("HardSigmoid", [x!], { alpha: { float: 0.4 }, beta: { float: 0.3 } }),
  },
  ...unary("HardSwish"),
  {
    name: "HardSwish across its three pieces",
    inputs: [{ name: "x", dims: [2, 4], values: [-4.5, -3.2, -2.5, -0.7, 0.4, 2.2, 3.4, 5.1] }],
    build: (g, [x]) => g.op("HardSwish", [x!]),
  },
  {
    name: "Clip with both bounds (values off the bounds)",
    inputs: [{ name: "x", dims: [3, 4], values: [-0.9, 0.3, 0.8, -0.2, 0.5, -0.6, 0.7, 0.1, -0.4, 0.9, -0.3, 0.6] }],
    build: (g, [x]) => g.op("Clip", [x!, g.scalarLike(-0.5, x!), g.scalarLike(0.55, x!)]),
  },
  {
    name: "PRelu with a per-channel slope [C,1,1]",
    inputs: [
      { name: "x", dims: [2, 3, 2, 2] },
      { name: "slope", dims: [3, 1, 1] },
    ],
    build: (g, [x, s]) => g.op("PRelu", [x!, s!]),
  },
  {
    name: "BatchNormalization in inference form (statistics constant)",
    inputs: [
      { name: "x", dims: [2, 3, 2, 2] },
      { name: "scale", dims: [3] },
      { name: "bias", dims: [3] },
    ],
    build: (g, [x, s, b]) => {
      const type = g.typeOf(x!).type;
      return g.op("BatchNormalization", [x!, s!, b!, g.constant([0.1, -0.2, 0.3], type), g.constant([0.5, 1.5, 0.8], type)], { epsilon: { float: 1e-3 } });
    },
  },
  {
    name: "grouped Conv (2 groups) stride 2 pads 1",
    inputs: [
      { name: "x", dims: [2, 4, 5, 5] },
      { name: "w", dims: [6, 2, 3, 3] },
    ],
    build: (g, [x, w]) => g.op("Conv", [x!, w!], { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] }),
  },
  {
    name: "depthwise Conv stride 1",
    inputs: [
      { name: "x", dims: [1, 3, 4, 4] },
      { name: "w", dims: [3, 1, 3, 3] },
    ],
    build: (g, [x, w]) => g.op("Conv", [x!, w!], { group: 3, pads: [1, 1, 1, 1] }),
  },
  {
    name: "ConvTranspose stride 2 with bias, 2 groups",
    inputs: [
      { name: "x", dims: [2, 4, 3, 3] },
      { name: "w", dims: [4, 1, 2, 2] },
      { name: "b", dims: [2] },
    ],
    build: (g, [x, w, b]) => g.op("ConvTranspose", [x!, w!, b!], { strides: [2, 2], group: 2 }),
  },
  {
    name: "ConvTranspose 3x3 stride 2 pads 1 output_padding 1",
    inputs: [
      { name: "x", dims: [1, 2, 3, 3] },
      { name: "w", dims: [2, 3, 3, 3] },
    ],
    build: (g, [x, w]) => g.op("ConvTranspose", [x!, w!], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }),
  },
  {
    name: "GlobalMaxPool (distinct values, so a perturbation never changes the maximum)",
    inputs: [{ name: "x", dims: [2, 3, 2, 3], values: Array.from({ length: 36 }, (_, i) => ((i * 7) % 36) / 10 - 1.8) }],
    build: (g, [x]) => g.op("GlobalMaxPool", [x!]),
  },
  {
    name: "Pad constant mode, uneven pads",
    inputs: [{ name: "x", dims: [2, 3, 4] }],
    build: (g, [x]) => g.op("Pad", [x!, g.ints([0, 1, 2, 0, 2, 0]), g.scalarLike(0.5, x!)]),
  },
  {
    name: "Resize nearest ×2 (asymmetric, floor)",
    inputs: [{ name: "x", dims: [1, 2, 3, 4] }],
    build: (g, [x]) => g.op("Resize", [x!, "", g.constant([1, 1, 2, 2], "float32")], { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" }),
  },
  {
    name: "Resize linear to 5x7 (half_pixel)",
    inputs: [{ name: "x", dims: [2, 1, 3, 4] }],
    build: (g, [x]) => g.op("Resize", [x!, "", "", g.ints([2, 1, 5, 7])], { mode: "linear" }),
  },
  {
    name: "Gather along axis 1 with a scalar index (a sequence's last step)",
    inputs: [{ name: "x", dims: [2, 4, 3] }],
    build: (g, [x]) => g.op("Gather", [x!, g.constant([-1], "int64", [])], { axis: 1 }),
  },
  {
    name: "Gather along axis 2 with repeated indices",
    inputs: [
      { name: "x", dims: [2, 3, 4] },
      { name: "idx", dims: [3], ints: [3, 0, 3] },
    ],
    build: (g, [x, i]) => g.op("Gather", [x!, i!], { axis: 2 }),
  },
  {
    name: "Abs (values off 0)",
    inputs: [{ name: "x", dims: [3, 4], values: [-0.9, 0.3, 0.8, -0.2, 0.5, -0.6, 0.7, 0.1, -0.4, 0.9, -0.3, 0.6] }],
    build: (g, [x]) => g.op("Abs", [x!]),
  },
  {
    name: "LeakyRelu alpha 0.2 (values off 0)",
    inputs: [{ name: "x", dims: [3, 4], values: [-0.9, 0.3, 0.8, -0.2, 0.5, -0.6, 0.7, 0.1, -0.4, 0.9, -0.3, 0.6] }],
    build: (g, [x]) => g.op("LeakyRelu", [x!], { alpha: { float: 0.2 } }),
  },
  ...unary("Reciprocal", true),
  {
    name: "one value used twice sums its gradients",
    inputs: [{ name: "x", dims: [3, 3] }],
    build: (g, [x]) => g.op("MatMul", [g.op("Tanh", [x!]), g.op("Mul", [x!, x!])]),
  },
];

test("gradient: Dropout at rate 0.3 in training mode scales by 1/(1-p) where the mask keeps, as torch.nn.functional.dropout", async () => {
  const g = new Graph("dropout");
  const n = 20_000;
  g.addInput("x", "float32", [n]);
  g.addInput("w", "float32", [n]);
  const [y, mask] = g.add("Dropout", ["x", g.constant([0.3], "float32", []), g.constant([1], "bool", [])], { outputs: 2, attrs: { seed: 7 } });
  const loss = g.op("ReduceSum", [g.op("Mul", [y!, "w"])], { keepdims: 0 });
  const { gradients } = appendBackward(g, loss, ["x"]);
  for (const [name, value] of [["y", y!], ["mask", mask!], ["dx", gradients.get("x")!]] as const) {
    g.add("Identity", [value], { outputs: [name] });
    g.addOutput(name);
  }
  const session = await ort.InferenceSession.create(encodeModel(g.toModel()));
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) + 1.5);
  const w = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const out = await session.run({ x: new ort.Tensor("float32", x, [n]), w: new ort.Tensor("float32", w, [n]) });
  const keep = out.mask!.data as Uint8Array;
  const kept = keep.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(kept - 0.7) < 0.02, `${(kept * 100).toFixed(1)}% kept at rate 0.3`);
  const [yv, dx] = [out.y!.data as Float32Array, out.dx!.data as Float32Array];
  for (let i = 0; i < n; i++) {
    // The same mask drives the forward pass and the gradient: dy/dx = mask / (1 - p).
    assert.ok(Math.abs(yv[i]! - (keep[i] ? x[i]! / 0.7 : 0)) < 1e-5, `y[${i}]`);
    assert.ok(Math.abs(dx[i]! - (keep[i] ? w[i]! / 0.7 : 0)) < 1e-5, `dx[${i}] = ${dx[i]} with mask ${keep[i]}`);
  }
  await session.release();
});

for (const c of cases) {
  test(`gradient: ${c.name}`, async (t) => {
    const report = await gradCheck(c);
    assert.ok(report.checked > 0);
    t.diagnostic(`${report.checked} partials in ${report.type}, max relative error ${report.maxError.toExponential(2)}`);
  });
}
