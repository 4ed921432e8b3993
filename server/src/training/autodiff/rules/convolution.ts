import { attrInt, attrInts, attrString } from "../../onnx/attributes.js";
import type { Dim } from "../../onnx/graph-builder.js";
import type { Graph } from "../../onnx/graph.js";
import type { GradientContext, GradientRule } from "../gradient-rule.js";
import { reduceSum } from "../grad-ops.js";

interface ConvGeometry {
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
}

/** Kernel, strides, pads and dilations of a 2-D Conv or pool, with the spec's defaults; SAME padding is not supported. */
export function geometry(c: GradientContext, kernel: readonly number[]): ConvGeometry {
  const node = c.node;
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    throw new Error(`${node.opType} node "${node.name}": auto_pad ${autoPad} has no gradient rule; export the model with explicit pads`);
  }
  const n = kernel.length;
  return {
    kernel,
    strides: attrInts(node, "strides") ?? Array(n).fill(1),
    pads: autoPad === "VALID" ? Array(2 * n).fill(0) : (attrInts(node, "pads") ?? Array(2 * n).fill(0)),
    dilations: attrInts(node, "dilations") ?? Array(n).fill(1),
  };
}

/** Dims of a value that must be known from `from` on (the batch dim may stay symbolic). */
function staticDims(g: Graph, name: string, what: string, from = 0): number[] {
  const dims = g.dimsOf(name);
  if (!dims || dims.slice(from).some((d) => typeof d !== "number")) throw new Error(`${what}: the dims of "${name}" must be static`);
  return dims as number[];
}

/**
 * An identity kernel for a grouped Conv that unfolds each input channel into its kh*kw shifted copies
 * (im2col as a Conv): output channel ci*kh*kw + i*kw + j holds X[ci] shifted by (i, j), the order of W's
 * [Cin, kh, kw] flattening.
 */
function unfoldKernel(g: Graph, cin: number, kh: number, kw: number, like: string): string {
  const kk = kh * kw;
  const type = g.typeOf(like).type;
  const data = type === "float64" ? new Float64Array(cin * kk * kk) : new Float32Array(cin * kk * kk);
  for (let ci = 0; ci < cin; ci++) for (let k = 0; k < kk; k++) data[(ci * kk + k) * kk + k] = 1;
  return g.constant(data, type, [cin * kk, 1, kh, kw], "unfold_kernel");
}

/** dW of a Conv: each output channel's dY against the unfolded (im2col) input of its group, summed over the batch. */
function weightGradient(g: Graph, x: string, dy: string, wd: readonly number[], group: number, convAttrs: Record<string, number[]>): string {
  const [cout, cinPerGroup, kh, kw] = wd as [number, number, number, number];
  const cin = cinPerGroup * group;
  // dW[co, ci, i, j] = sum_n,p dY[n, co, p] * unfold(X)[n, ci*kh*kw + i*kw + j, p], within co's group
  const patches = g.op("Conv", [x, unfoldKernel(g, cin, kh, kw, x)], { ...convAttrs, group: cin });
  if (group === 1) {
    const p = g.op("Reshape", [patches, g.ints([0, cin * kh * kw, -1])]);
    const d = g.op("Transpose", [g.op("Reshape", [dy, g.ints([0, cout, -1])])], { perm: [0, 2, 1] });
    const m = reduceSum(g, g.op("MatMul", [p, d]), [0], false); // [Cin*kh*kw, Cout]
    return g.op("Reshape", [g.op("Transpose", [m], { perm: [1, 0] }), g.ints([cout, cin, kh, kw])]);
  }
  const p = g.op("Reshape", [patches, g.ints([0, group, cinPerGroup * kh * kw, -1])]);
  const d = g.op("Transpose", [g.op("Reshape", [dy, g.ints([0, group, cout / group, -1])])], { perm: [0, 1, 3, 2] });
  const m = reduceSum(g, g.op("MatMul", [p, d]), [0], false); // [G, Cin/G*kh*kw, Cout/G]
  return g.op("Reshape", [g.op("Transpose", [m], { perm: [0, 2, 1] }), g.ints([cout, cinPerGroup, kh, kw])]);
}

/**
 * dX of a strided, dilated or grouped Conv: ConvTranspose with the same weight and group maps dY back onto X's
 * channels. Rows and columns the stride skipped at the end are zeros: output_padding when X's dims are static,
 * a Pad computed from the shapes at run time when they are not (images of any size).
 */
function transposedConv(g: Graph, x: string, dy: string, w: string, geo: ConvGeometry, group: number): string {
  const attrs = { strides: [...geo.strides], pads: [...geo.pads], dilations: [...geo.dilations], group };
  const xd = g.dimsOf(x);
  const yd = g.dimsOf(dy);
  const known = (d: readonly Dim[] | undefined): d is number[] => Boolean(d && d.slice(2).every((v) => typeof v === "number"));
  if (known(xd) && known(yd)) {
    const outputPadding = [0, 1].map((i) => {
      const k = (geo.kernel[i]! - 1) * geo.dilations[i]! + 1;
      return xd[i + 2]! - ((yd[i + 2]! - 1) * geo.strides[i]! + k - geo.pads[i]! - geo.pads[i + 2]!);
    });
    return g.op("ConvTranspose", [dy, w], { ...attrs, output_padding: outputPadding });
  }
  const back = g.op("ConvTranspose", [dy, w], attrs);
  const spatial = (v: string): string => g.op("Slice", [g.op("Shape", [v]), g.ints([2]), g.ints([4])]);
  const missing = g.op("Sub", [spatial(x), spatial(back)]);
  const pads = g.op("Concat", [g.ints([0, 0, 0, 0, 0, 0]), missing], { axis: 0 });
  // Reshaped to X's own shape (a no-op) so the gradient carries X's symbolic dims.
  return g.op("Reshape", [g.op("Pad", [back, pads]), g.op("Shape", [x])]);
}

const conv: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const w = c.x(1);
  const dy = c.dy(0)!;
  const wd = staticDims(g, w, `Conv node "${node.name}"`);
  if (wd.length !== 4) throw new Error(`Conv node "${node.name}": only 2-D convolutions have a gradient rule (weight rank ${wd.length})`);
  const group = attrInt(node, "group", 1);
  const [cout, , kh, kw] = wd as [number, number, number, number];
  if (group < 1 || cout % group !== 0) throw new Error(`Conv node "${node.name}": group=${group} does not divide its ${cout} output channels`);
  const geo = geometry(c, [kh, kw]);
  const convAttrs = { strides: [...geo.strides], pads: [...geo.pads], dilations: [...geo.dilations] };

  let dx: string | undefined;
  const db = node.inputs[2] && c.wants(2) ? reduceSum(g, dy, [0, 2, 3], false) : undefined;
  const dw = c.wants(1) ? weightGradient(g, x, dy, wd, group, convAttrs) : undefined;
  if (c.wants(0)) {
    const unit = geo.strides.every((s) => s === 1) && geo.dilations.every((d) => d === 1);
    const flipPads = [kh - 1 - geo.pads[0]!, kw - 1 - geo.pads[1]!, kh - 1 - geo.pads[2]!, kw - 1 - geo.pads[3]!];
    if (group === 1 && unit && flipPads.every((p) => p >= 0)) {
      // A stride-1 conv's input gradient is a conv of dY with the flipped, transposed kernel: faster than ConvTranspose.
      const wt = g.op("Transpose", [w], { perm: [1, 0, 2, 3] });
      const flipped = g.op("Slice", [wt, g.ints([-1, -1]), g.ints([-kh - 1, -kw - 1]), g.ints([2, 3]), g.ints([-1, -1])]);
      dx = g.op("Conv", [dy, flipped], { pads: flipPads });
    } else {
      dx = transposedConv(g, x, dy, w, geo, group);
    }
  }
  return [dx, dw, db];
};

/**
 * ConvTranspose is the adjoint of a Conv with the same weight and attributes, so dX is that Conv applied to dY,
 * and dW is that Conv's weight gradient with dY as its input and X as its output gradient.
 */
const convTranspose: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const w = c.x(1);
  const dy = c.dy(0)!;
  const wd = staticDims(g, w, `ConvTranspose node "${node.name}"`);
  if (wd.length !== 4) throw new Error(`ConvTranspose node "${node.name}": only 2-D transposed convolutions have a gradient rule`);
  if (attrInts(node, "output_shape")) throw new Error(`ConvTranspose node "${node.name}": output_shape has no gradient rule; export with explicit pads`);
  const group = attrInt(node, "group", 1);
  const geo = geometry(c, [wd[2]!, wd[3]!]);
  const convAttrs = { strides: [...geo.strides], pads: [...geo.pads], dilations: [...geo.dilations] };
  const dx = c.wants(0) ? g.op("Conv", [dy, w], { ...convAttrs, group }) : undefined;
  const dw = c.wants(1) ? weightGradient(g, dy, x, wd, group, convAttrs) : undefined;
  const db = node.inputs[2] && c.wants(2) ? reduceSum(g, dy, [0, 2, 3], false) : undefined;
  return [dx, dw, db];
};

export const convolutionRules: Record<string, GradientRule> = { Conv: conv, ConvTranspose: convTranspose };
