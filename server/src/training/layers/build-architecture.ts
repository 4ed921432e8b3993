import type { ModelProto } from "onnx-buf";
import type { Dim } from "../onnx/graph-builder.js";
import { Graph } from "../onnx/graph.js";
import { reduceMean } from "../autodiff/grad-ops.js";
import { TRAINING_FLAG } from "../engine/train-program.js";
import { LAYER_TYPES, type ArchitectureSpec, type LayerSpec } from "./layer-spec.js";
import { parameterInit, type ParameterInit } from "./parameter-init.js";

/** A spec that cannot be built; the message names the layer and what is wrong. */
export class ArchitectureError extends Error {
  override readonly name = "ArchitectureError";
}

interface Cursor {
  value: string;
  dims: Dim[];
}

interface LayerContext {
  readonly g: Graph;
  readonly init: ParameterInit;
  /** Parameter-name prefix: the layer's index, as in torch.nn.Sequential. */
  readonly prefix: string;
  readonly where: string;
  readonly fail: (message: string) => never;
  /** A seed for the next random op (Dropout): the spec's seed and the op's place, so a job with a fixed seed repeats. */
  readonly nextSeed: () => number;
}

const positiveInt = (ctx: LayerContext, value: unknown, field: string): number => {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) ctx.fail(`${field} must be a positive integer, got ${JSON.stringify(value)}`);
  return value as number;
};

function param(ctx: LayerContext, name: string, dims: number[], data: Float32Array): string {
  return ctx.g.addInitializer(`${ctx.prefix}.${name}`, { type: "float32", dims, data });
}

function staticDim(ctx: LayerContext, cur: Cursor, axis: number, what: string): number {
  const d = cur.dims[axis];
  if (typeof d !== "number") ctx.fail(`${what} must be static, got ${String(d)}`);
  return d as number;
}

/** x @ W^T + b over the last axis of a rank-2 or rank-3 input, torch Linear layout (W: [out, in]). */
function linear(ctx: LayerContext, x: string, dims: Dim[], name: string, inF: number, outF: number, init?: { w: Float32Array; b: Float32Array }): Cursor {
  const { g } = ctx;
  const w = param(ctx, `${name}weight`, [outF, inF], init?.w ?? ctx.init.uniform(outF * inF, inF));
  const b = param(ctx, `${name}bias`, [outF], init?.b ?? ctx.init.uniform(outF, inF));
  if (dims.length === 2) return { value: g.op("Gemm", [x, w, b], { transB: 1 }), dims: [dims[0]!, outF] };
  const y = g.op("Add", [g.op("MatMul", [x, g.op("Transpose", [w], { perm: [1, 0] })]), b]);
  return { value: y, dims: [...dims.slice(0, -1), outF] };
}

function requireRank(ctx: LayerContext, cur: Cursor, ranks: number[], hint: string): void {
  if (!ranks.includes(cur.dims.length)) {
    ctx.fail(`expects an input of rank ${ranks.join(" or ")} (${hint}), got [${cur.dims.join(", ")}]`);
  }
}

function gelu(g: Graph, x: string): string {
  const e = g.op("Erf", [g.op("Mul", [x, g.scalarLike(Math.SQRT1_2, x)])]);
  return g.op("Mul", [g.op("Mul", [x, g.scalarLike(0.5, x)]), g.op("Add", [e, g.scalarLike(1, x)])]);
}

function dropout(ctx: LayerContext, x: string, rate: number): string {
  const { g } = ctx;
  if (!g.has(TRAINING_FLAG)) g.addInitializer(TRAINING_FLAG, { type: "bool", dims: [], data: Uint8Array.of(0) });
  return g.add("Dropout", [x, g.scalarLike(rate, x), TRAINING_FLAG], { outputs: [g.fresh("dropout"), g.fresh("dropout_mask")], attrs: { seed: ctx.nextSeed() } })[0]!;
}

/** Multi-head scaled dot-product self-attention with torch.nn.MultiheadAttention's parameters and arithmetic. */
function selfAttention(ctx: LayerContext, cur: Cursor, heads: number, name: string): Cursor {
  const { g } = ctx;
  const seq = staticDim(ctx, cur, 1, "the sequence length");
  const e = staticDim(ctx, cur, 2, "the model width");
  if (e % heads !== 0) ctx.fail(`width ${e} is not divisible by ${heads} heads`);
  const d = e / heads;
  const wIn = param(ctx, `${name}in_proj_weight`, [3 * e, e], ctx.init.xavier(3 * e * e, e, 3 * e));
  const bIn = param(ctx, `${name}in_proj_bias`, [3 * e], ctx.init.fill(3 * e, 0));
  const qkv = g.op("Add", [g.op("MatMul", [cur.value, g.op("Transpose", [wIn], { perm: [1, 0] })]), bIn]);
  const [q, k, v] = g.add("Split", [qkv, g.ints([e, e, e])], { outputs: 3, attrs: { axis: 2 } });
  const heads4 = (x: string): string => g.op("Transpose", [g.op("Reshape", [x, g.ints([0, seq, heads, d])])], { perm: [0, 2, 1, 3] });
  const qh = g.op("Div", [heads4(q!), g.scalarLike(Math.sqrt(d), q!)]);
  const kt = g.op("Transpose", [g.op("Reshape", [k!, g.ints([0, seq, heads, d])])], { perm: [0, 2, 3, 1] });
  const weights = g.op("Softmax", [g.op("MatMul", [qh, kt])], { axis: -1 });
  const context = g.op("MatMul", [weights, heads4(v!)]);
  const merged = g.op("Reshape", [g.op("Transpose", [context], { perm: [0, 2, 1, 3] }), g.ints([0, seq, e])]);
  const init = { w: ctx.init.uniform(e * e, e), b: ctx.init.fill(e, 0) };
  return linear(ctx, merged, [cur.dims[0]!, seq, e], `${name}out_proj.`, e, e, init);
}

function layerNorm(ctx: LayerContext, cur: Cursor, name: string, epsilon: number): Cursor {
  const e = staticDim(ctx, cur, cur.dims.length - 1, "the normalised (last) dim");
  const scale = param(ctx, `${name}weight`, [e], ctx.init.fill(e, 1));
  const bias = param(ctx, `${name}bias`, [e], ctx.init.fill(e, 0));
  return { value: ctx.g.op("LayerNormalization", [cur.value, scale, bias], { axis: -1, epsilon: { float: epsilon } }), dims: cur.dims };
}

function pool(ctx: LayerContext, cur: Cursor, op: string, size: number, stride: number): Cursor {
  requireRank(ctx, cur, [4], "[batch, channels, height, width]");
  const h = staticDim(ctx, cur, 2, "height");
  const w = staticDim(ctx, cur, 3, "width");
  if (size > h || size > w) ctx.fail(`window ${size} is larger than the ${h}x${w} input`);
  const out = [cur.dims[0]!, cur.dims[1]!, Math.floor((h - size) / stride) + 1, Math.floor((w - size) / stride) + 1];
  return { value: ctx.g.op(op, [cur.value], { kernel_shape: [size, size], strides: [stride, stride] }), dims: out };
}

/** A 2-D convolution with bias, as torch.nn.Conv2d. */
function conv2d(ctx: LayerContext, layer: Extract<LayerSpec, { type: "conv2d" }>, cur: Cursor): Cursor {
  const { g } = ctx;
  const filters = positiveInt(ctx, layer.filters, "filters");
  const kernel = positiveInt(ctx, layer.kernel, "kernel");
  const stride = layer.stride === undefined ? 1 : positiveInt(ctx, layer.stride, "stride");
  requireRank(ctx, cur, [4], "[batch, channels, height, width]");
  const cin = staticDim(ctx, cur, 1, "the channel dim");
  const pad = layer.padding === "same" ? (kernel - 1) / 2 : layer.padding === "valid" || layer.padding === undefined ? 0 : layer.padding;
  if (!Number.isInteger(pad) || pad < 0) ctx.fail(`padding "same" needs an odd kernel; padding must be a non-negative integer`);
  const h = staticDim(ctx, cur, 2, "height");
  const w = staticDim(ctx, cur, 3, "width");
  const oh = Math.floor((h + 2 * pad - kernel) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kernel) / stride) + 1;
  if (oh < 1 || ow < 1) ctx.fail(`a ${kernel}x${kernel} kernel does not fit the ${h}x${w} input`);
  const fanIn = cin * kernel * kernel;
  const wt = param(ctx, "weight", [filters, cin, kernel, kernel], ctx.init.uniform(filters * fanIn, fanIn));
  const b = param(ctx, "bias", [filters], ctx.init.uniform(filters, fanIn));
  const y = g.op("Conv", [cur.value, wt, b], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  return { value: y, dims: [cur.dims[0]!, filters, oh, ow] };
}

/** An Elman RNN (tanh), as torch.nn.RNN: the input projection of every step is one MatMul; only the recurrence is unrolled. */
function rnn(ctx: LayerContext, layer: Extract<LayerSpec, { type: "rnn" }>, cur: Cursor): Cursor {
  const { g } = ctx;
  const units = positiveInt(ctx, layer.units, "units");
  requireRank(ctx, cur, [3], "[batch, sequence, features]");
  const steps = staticDim(ctx, cur, 1, "the sequence length (the RNN is unrolled)");
  const inF = staticDim(ctx, cur, 2, "the feature dim");
  // torch.nn.RNN (tanh): h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), h_0 = 0
  const wih = param(ctx, "weight_ih_l0", [units, inF], ctx.init.uniform(units * inF, units));
  const whh = param(ctx, "weight_hh_l0", [units, units], ctx.init.uniform(units * units, units));
  const bih = param(ctx, "bias_ih_l0", [units], ctx.init.uniform(units, units));
  const bhh = param(ctx, "bias_hh_l0", [units], ctx.init.uniform(units, units));
  // The input projection of every step is one MatMul; only the recurrence is unrolled.
  const xw = g.op("Add", [g.op("MatMul", [cur.value, g.op("Transpose", [wih], { perm: [1, 0] })]), bih]);
  const parts = steps === 1 ? [xw] : g.add("Split", [xw, g.ints(Array(steps).fill(1))], { outputs: steps, attrs: { axis: 1 } });
  const outputs: string[] = [];
  let h: string | undefined;
  for (const part of parts) {
    const xt = g.op("Reshape", [part, g.ints([0, units])]);
    const pre = h ? g.op("Add", [xt, g.op("Gemm", [h, whh, bhh], { transB: 1 })]) : g.op("Add", [xt, bhh]);
    h = g.op("Tanh", [pre]);
    outputs.push(h);
  }
  if (layer.returnSequences) {
    const seq = g.op("Concat", outputs.map((o) => g.op("Unsqueeze", [o, g.ints([1])])), { axis: 1 });
    return { value: seq, dims: [cur.dims[0]!, steps, units] };
  }
  return { value: h!, dims: [cur.dims[0]!, units] };
}

/** One post-norm encoder block, as torch.nn.TransformerEncoderLayer(batch_first=True, norm_first=False). */
function transformerEncoder(ctx: LayerContext, layer: Extract<LayerSpec, { type: "transformer" }>, cur: Cursor): Cursor {
  const { g } = ctx;
  // torch.nn.TransformerEncoderLayer(batch_first=True, norm_first=False): post-norm residual blocks.
  const heads = positiveInt(ctx, layer.heads, "heads");
  const ff = positiveInt(ctx, layer.feedForward, "feedForward");
  requireRank(ctx, cur, [3], "[batch, sequence, width]");
  const e = staticDim(ctx, cur, 2, "the model width");
  const rate = layer.dropout ?? 0;
  const drop = (x: string): string => (rate > 0 ? dropout(ctx, x, rate) : x);
  const sa = selfAttention(ctx, cur, heads, "self_attn.");
  const x1 = layerNorm(ctx, { value: g.op("Add", [cur.value, drop(sa.value)]), dims: cur.dims }, "norm1.", 1e-5);
  const h1 = linear(ctx, x1.value, x1.dims, "linear1.", e, ff);
  const act = layer.activation === "gelu" ? gelu(g, h1.value) : g.op("Relu", [h1.value]);
  const h2 = linear(ctx, drop(act), h1.dims, "linear2.", ff, e);
  return layerNorm(ctx, { value: g.op("Add", [x1.value, drop(h2.value)]), dims: cur.dims }, "norm2.", 1e-5);
}

function emitLayer(ctx: LayerContext, layer: LayerSpec, cur: Cursor): Cursor {
  const { g } = ctx;
  if (layer.type !== "embedding" && g.typeOf(cur.value).type !== "float32") {
    ctx.fail(`takes float values, but gets ${g.typeOf(cur.value).type} token ids: put an embedding layer first (or send float32 inputs)`);
  }
  switch (layer.type) {
    case "dense": {
      const units = positiveInt(ctx, layer.units, "units");
      requireRank(ctx, cur, [2, 3], "[batch, features] or [batch, sequence, features]; add a flatten layer before it");
      const inF = staticDim(ctx, cur, cur.dims.length - 1, "the feature dim");
      return linear(ctx, cur.value, cur.dims, "", inF, units);
    }
    case "conv2d":
      return conv2d(ctx, layer, cur);
    case "maxpool2d":
      return pool(ctx, cur, "MaxPool", positiveInt(ctx, layer.size, "size"), layer.stride ?? layer.size);
    case "avgpool2d":
      return pool(ctx, cur, "AveragePool", positiveInt(ctx, layer.size, "size"), layer.stride ?? layer.size);
    case "flatten": {
      if (cur.dims.length < 2) ctx.fail(`needs a batch dim and at least one more, got [${cur.dims.join(", ")}]`);
      const rest = cur.dims.slice(1);
      const size = rest.every((d) => typeof d === "number") ? (rest as number[]).reduce((a, b) => a * b, 1) : ctx.fail("needs static dims after the batch");
      return { value: g.op("Flatten", [cur.value], { axis: 1 }), dims: [cur.dims[0]!, size] };
    }
    case "relu":
    case "tanh":
    case "sigmoid": {
      const op = layer.type === "relu" ? "Relu" : layer.type === "tanh" ? "Tanh" : "Sigmoid";
      return { value: g.op(op, [cur.value]), dims: cur.dims };
    }
    case "gelu":
      return { value: gelu(g, cur.value), dims: cur.dims };
    case "dropout": {
      if (typeof layer.rate !== "number" || !(layer.rate >= 0 && layer.rate < 1)) ctx.fail(`rate must be in [0, 1), got ${JSON.stringify(layer.rate)}`);
      return { value: dropout(ctx, cur.value, layer.rate), dims: cur.dims };
    }
    case "embedding": {
      const vocab = positiveInt(ctx, layer.vocab, "vocab");
      const dim = positiveInt(ctx, layer.dim, "dim");
      if (g.typeOf(cur.value).type !== "int64") ctx.fail("takes int64 token ids; set the input type to int64");
      const table = param(ctx, "weight", [vocab, dim], ctx.init.normal(vocab * dim));
      return { value: g.op("Gather", [table, cur.value], { axis: 0 }), dims: [...cur.dims, dim] };
    }
    case "rnn":
      return rnn(ctx, layer, cur);
    case "attention": {
      const heads = positiveInt(ctx, layer.heads, "heads");
      requireRank(ctx, cur, [3], "[batch, sequence, width]");
      return selfAttention(ctx, cur, heads, "");
    }
    case "layernorm":
      return layerNorm(ctx, cur, "", layer.epsilon ?? 1e-5);
    case "transformer":
      return transformerEncoder(ctx, layer, cur);
    case "meanpool":
      requireRank(ctx, cur, [3], "[batch, sequence, width]");
      return { value: reduceMean(g, cur.value, [1], false), dims: [cur.dims[0]!, cur.dims[2]!] };
    default:
      return ctx.fail(`unknown layer type ${JSON.stringify((layer as { type: unknown }).type)} (known: ${LAYER_TYPES.join(", ")})`);
  }
}

/** Trainable values a built architecture may have: 400 MB of float32 weights, four times that with gradients and Adam's moments. */
export const MAX_PARAMETERS = 100_000_000;
/** Values one row may have at the input or at any layer's output (64 MB of float32 per row). */
export const MAX_ROW_VALUES = 1 << 24;

const count = (n: number): string => n.toLocaleString("en-US");

/** An initialiser that refuses, before allocating, a tensor past what the architecture may still have. */
function budgeted(init: ParameterInit, fail: (message: string) => never, budget: { left: number }): ParameterInit {
  const take = (n: number): number => {
    if (!Number.isSafeInteger(n) || n > budget.left) {
      fail(`a parameter of ${count(n)} values would take the model past ${count(MAX_PARAMETERS)} trainable parameters; make the layer smaller`);
    }
    budget.left -= n;
    return n;
  };
  return {
    uniform: (n, fanIn) => init.uniform(take(n), fanIn),
    xavier: (n, fanIn, fanOut) => init.xavier(take(n), fanIn, fanOut),
    normal: (n) => init.normal(take(n)),
    fill: (n, value) => init.fill(take(n), value),
  };
}

/** Values per row of a shape without its batch dim, checked against MAX_ROW_VALUES. */
function checkRowSize(dims: readonly Dim[], fail: (message: string) => never, what: string): void {
  const values = dims.slice(1).reduce<number>((n, d) => (typeof d === "number" ? n * d : n), 1);
  if (!(values <= MAX_ROW_VALUES)) fail(`${what} [${dims.slice(1).join(", ")}] has ${count(values)} values per row; at most ${count(MAX_ROW_VALUES)}`);
}

/**
 * Builds the forward graph of an architecture spec: input [batch, …dims] → `logits` (+ `probabilities` for
 * classification). Parameters are named as torch.nn.Sequential names them ("0.weight", "3.self_attn.in_proj_weight")
 * and initialised with torch's default distributions from `seed`. Shapes are checked layer by layer.
 */
export function buildArchitecture(spec: ArchitectureSpec, options: { seed?: number; name?: string } = {}): ModelProto {
  const g = new Graph(options.name ?? "model");
  const init = parameterInit(options.seed ?? 1);
  if (!spec || !Array.isArray(spec.layers) || spec.layers.length === 0) throw new ArchitectureError("architecture: layers must be a non-empty list");
  if (!spec.input || !Array.isArray(spec.input.dims) || spec.input.dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new ArchitectureError("architecture: input.dims must list positive integers (the input shape without the batch dim)");
  }
  const refuse = (message: string): never => {
    throw new ArchitectureError(message);
  };
  checkRowSize(["batch", ...spec.input.dims], (m) => refuse(`architecture: input.dims: ${m}`), "the input");
  const budget = { left: MAX_PARAMETERS };
  let randomOps = 0;
  const nextSeed = (): number => (((options.seed ?? 1) * 7919 + ++randomOps * 104_729) >>> 0) % 2 ** 31;
  const inputType = spec.input.type ?? "float32";
  const inputName = g.addInput(spec.input.name ?? "input", inputType, ["batch", ...spec.input.dims]);
  let cur: Cursor = { value: inputName, dims: ["batch", ...spec.input.dims] };
  spec.layers.forEach((layer, index) => {
    const where = `layer ${index} (${String((layer as { type?: unknown })?.type)})`;
    const fail = (message: string): never => {
      throw new ArchitectureError(`${where}: ${message}`);
    };
    const ctx: LayerContext = { g, init: budgeted(init, fail, budget), prefix: String(index), where, fail, nextSeed };
    if (!layer || typeof layer !== "object") ctx.fail("must be an object with a type");
    // Sizes are checked before anything is allocated: an absurd layer is the client's error, not a RangeError.
    const units = (layer as { units?: unknown }).units ?? (layer as { filters?: unknown }).filters;
    if (typeof units === "number" && units > MAX_ROW_VALUES) fail(`${count(units)} units; a layer may have at most ${count(MAX_ROW_VALUES)}`);
    cur = emitLayer(ctx, layer, cur);
    checkRowSize(cur.dims, fail, "its output");
  });
  if (g.typeOf(cur.value).type !== "float32") throw new ArchitectureError("architecture: the last layer must produce float values");
  const task = spec.task ?? "classification";
  if (task === "classification" && cur.dims.length !== 2) {
    throw new ArchitectureError(`architecture: classification needs [batch, classes] logits from the last layer, got [${cur.dims.join(", ")}]`);
  }
  g.add("Identity", [cur.value], { outputs: ["logits"] });
  g.addOutput("logits", cur.dims);
  if (task === "classification") {
    g.add("Softmax", ["logits"], { outputs: ["probabilities"], attrs: { axis: 1 } });
    g.addOutput("probabilities", cur.dims);
  }
  return g.toModel({ docString: JSON.stringify({ architecture: spec }) });
}
