// Shape rules of reductions, ArgMax/ArgMin, LayerNormalization and SoftmaxCrossEntropyLoss.
import { attrInt, attrInts, attrString } from "../attributes.js";
import { product } from "./dim-arithmetic.js";
import type { Dim } from "../graph-builder.js";
import type { ShapeRule } from "./shape-rule.js";

const reduce: ShapeRule = ({ node, g, set, first, dims0, sym, constInts, setSym }) => {
  if (!first) return;
  if (!dims0) return set(0, first.type, undefined);
  const axesFromInput = node.opType === "ReduceSum" ? g.opset >= 13 : g.opset >= 18;
  const axes = axesFromInput ? (node.inputs[1] ? constInts(1) : undefined) : attrInts(node, "axes");
  if (axesFromInput && node.inputs[1] && !axes) {
    return set(0, first.type, attrInt(node, "keepdims", 1) ? dims0.map((_, i) => `${node.outputs[0]}_d${i}`) : undefined);
  }
  const norm = (axes ?? (attrInt(node, "noop_with_empty_axes", 0) ? [] : dims0.map((_, i) => i))).map((a) => (a < 0 ? a + dims0.length : a));
  const keep = attrInt(node, "keepdims", 1) === 1;
  const out: Dim[] = [];
  dims0.forEach((d, i) => {
    if (!norm.includes(i)) out.push(d);
    else if (keep) out.push(1);
  });
  if (node.opType === "ReduceProd" && sym(0) && dims0.length === 1) setSym(0, [product(sym(0)!)]);
  return set(0, first.type, out);
};

const argExtreme: ShapeRule = ({ node, set, dims0 }) => {
  if (!dims0) return set(0, "int64", undefined);
  let axis = attrInt(node, "axis", 0);
  if (axis < 0) axis += dims0.length;
  const keep = attrInt(node, "keepdims", 1) === 1;
  return set(0, "int64", dims0.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d])));
};

const layerNormalization: ShapeRule = ({ node, set, first, dims0 }) => {
  if (!first || !dims0) return;
  let axis = attrInt(node, "axis", -1);
  if (axis < 0) axis += dims0.length;
  set(0, first.type, dims0);
  const stat = dims0.map((d, i) => (i < axis ? d : 1));
  set(1, first.type, stat);
  set(2, first.type, stat);
};

/** Y as X; in training mode, the running mean and variance out as [C]. */
const batchNormalization: ShapeRule = ({ set, first, dims0 }) => {
  if (!first || !dims0) return;
  set(0, first.type, dims0);
  set(1, first.type, [dims0[1] ?? 1]);
  set(2, first.type, [dims0[1] ?? 1]);
};

const softmaxCrossEntropyLoss: ShapeRule = ({ node, set, first, dims0 }) => {
  if (!first || !dims0) return;
  const reduction = attrString(node, "reduction", "mean");
  set(0, first.type, reduction === "none" ? [dims0[0]!, ...dims0.slice(2)] : []);
  set(1, first.type, dims0);
};

export const reductionsShapes: Readonly<Record<string, ShapeRule>> = {
  ReduceSum: reduce,
  ReduceMean: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceSumSquare: reduce,
  ReduceL2: reduce,
  ArgMax: argExtreme,
  ArgMin: argExtreme,
  LayerNormalization: layerNormalization,
  BatchNormalization: batchNormalization,
  SoftmaxCrossEntropyLoss: softmaxCrossEntropyLoss,
};
