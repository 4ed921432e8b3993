// Shape rules of convolutions and pools: output size from kernel, strides, dilations, pads and auto_pad.
import { attrInt, attrInts, attrString } from "../attributes.js";
import type { Dim } from "../graph-builder.js";
import type { ElementType } from "../element-type.js";
import type { GraphNode, ShapeGraph } from "../graph-types.js";
import type { ShapeRule } from "./shape-rule.js";

const windowed: ShapeRule = ({ node, g, set }) => {
  return inferWindowed(g, node, set);
};

const globalPool: ShapeRule = ({ set, first, dims0 }) => {
  if (first) set(0, first.type, dims0 ? [dims0[0]!, dims0[1]!, ...dims0.slice(2).map(() => 1)] : undefined);
};

/** Resize: the `sizes` input where given, else each dim times its scale (floored); dims without a known value stay open. */
const resize: ShapeRule = ({ node, g, set, first, dims0 }) => {
  if (!first) return;
  if (!dims0) return set(0, first.type, undefined);
  const constant = (i: number): number[] | undefined => {
    const name = node.inputs[i];
    const c = name ? g.constantOf(name) : undefined;
    return c && c.data.length === dims0.length ? Array.from(c.data as ArrayLike<number | bigint>, Number) : undefined;
  };
  const sizes = node.inputs[3] ? g.symbolic.get(node.inputs[3]) : undefined;
  const scales = constant(2);
  const out = dims0.map((d, i): Dim => {
    if (sizes?.length === dims0.length) return sizes[i]!;
    if (scales && scales[i] === 1) return d;
    if (scales && typeof d === "number") return Math.floor(d * scales[i]!);
    return `${node.outputs[0]}_d${i}`;
  });
  set(0, first.type, out);
};

export const windowedShapes: Readonly<Record<string, ShapeRule>> = {
  Conv: windowed,
  ConvTranspose: windowed,
  MaxPool: windowed,
  AveragePool: windowed,
  MaxUnpool: windowed,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  Resize: resize,
};

function inferWindowed(
  g: ShapeGraph,
  node: GraphNode,
  set: (i: number, type: ElementType, dims: readonly Dim[] | undefined) => void,
): void {
  const x = g.types.get(node.inputs[0]!);
  if (!x) return;
  const dims = x.dims;
  if (!dims) return set(0, x.type, undefined);
  const spatial = dims.length - 2;
  const w = node.opType === "Conv" || node.opType === "ConvTranspose" ? g.types.get(node.inputs[1]!)?.dims : undefined;
  const kernel = attrInts(node, "kernel_shape") ?? (w ? (w.slice(2) as number[]) : undefined);
  const strides = attrInts(node, "strides") ?? Array(spatial).fill(1);
  const dil = attrInts(node, "dilations") ?? Array(spatial).fill(1);
  const pads = attrInts(node, "pads") ?? Array(spatial * 2).fill(0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const ceil = attrInt(node, "ceil_mode", 0) === 1;
  const group = attrInt(node, "group", 1);
  let channels: Dim = dims[1]!;
  if (node.opType === "Conv") channels = w?.[0] ?? `${node.outputs[0]}_c`;
  if (node.opType === "ConvTranspose") channels = typeof w?.[1] === "number" ? w[1] * group : `${node.outputs[0]}_c`;
  const out: Dim[] = [dims[0]!, channels];
  for (let i = 0; i < spatial; i++) {
    const d = dims[i + 2]!;
    const k = kernel?.[i];
    if (typeof d !== "number" || k === undefined) {
      out.push(`${node.outputs[0]}_s${i}`);
      continue;
    }
    const s = strides[i]!;
    if (node.opType === "ConvTranspose") {
      const op = attrInts(node, "output_padding")?.[i] ?? 0;
      const explicit = attrInts(node, "output_shape");
      out.push(explicit ? explicit[i]! : s * (d - 1) + op + ((k - 1) * dil[i]! + 1) - pads[i]! - pads[i + spatial]!);
      continue;
    }
    if (node.opType === "MaxUnpool") {
      out.push((d - 1) * s + k - pads[i]! - pads[i + spatial]!);
      continue;
    }
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out.push(Math.ceil(d / s));
      continue;
    }
    const total = autoPad === "VALID" ? d - ((k - 1) * dil[i]! + 1) : d + pads[i]! + pads[i + spatial]! - ((k - 1) * dil[i]! + 1);
    out.push((ceil ? Math.ceil(total / s) : Math.floor(total / s)) + 1);
  }
  if (node.opType === "MaxUnpool" && node.inputs[2]) {
    const shape = g.symbolic.get(node.inputs[2]);
    if (shape) return set(0, x.type, shape);
  }
  set(0, x.type, out);
  if (node.opType === "MaxPool") set(1, "int64", out);
}
