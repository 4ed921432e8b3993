import { attrInt, attrInts } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { normAxis, reshapeLike, scatterAddFlat, unbroadcast, zerosOfShape } from "../grad-ops.js";

// Ops that only move or select elements: the gradient moves them back.

const reshapeBack: GradientRule = (c) => [reshapeLike(c.g, c.dy(0)!, c.x(0))];

const transpose: GradientRule = (c) => {
  const rank = c.g.rankOf(c.x(0));
  const perm = attrInts(c.node, "perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [c.g.op("Transpose", [c.dy(0)!], { perm: inverse })];
};

const concat: GradientRule = (c) => {
  const { g, node } = c;
  const rank = g.rankOf(c.x(0));
  const axis = normAxis(attrInt(node, "axis", 0), rank);
  const sizes = node.inputs.map((name) => g.dimsOf(name)?.[axis]);
  const sizesValue = sizes.every((s) => typeof s === "number")
    ? g.ints(sizes as number[])
    : g.op("Concat", node.inputs.map((name) => g.op("Gather", [g.op("Shape", [name]), g.ints([axis])])), { axis: 0 });
  const parts = g.add("Split", [c.dy(0)!, sizesValue], { outputs: node.inputs.length, attrs: { axis } });
  return parts.map((p, i) => (c.wants(i) ? p : undefined));
};

const split: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const rank = g.rankOf(x);
  const axis = normAxis(attrInt(node, "axis", 0), rank);
  // Outputs that do not reach the loss contribute zeros of their own shape.
  const parts = node.outputs.map((out, i) => {
    const dy = c.dy(i);
    if (dy) return dy;
    return g.op("Mul", [out, g.scalarLike(0, out)]);
  });
  return [g.op("Concat", parts, { axis })];
};

/** A flat int64 index per element of `x`, in x's shape: [[0,1,2],[3,4,5]] … */
function flatIndex(c: Parameters<GradientRule>[0], x: string): string {
  const { g } = c;
  const size = g.op("Size", [x]);
  const range = g.op("Range", [g.constant([0], "int64", []), size, g.constant([1], "int64", [])]);
  return g.op("Reshape", [range, g.op("Shape", [x])]);
}

const slice: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  // Slice the flat positions the same way, then scatter-add the gradient back to them: works for any
  // starts, ends, axes and (negative) steps.
  return [scatterAddFlat(g, x, g.op("Slice", [flatIndex(c, x), ...node.inputs.slice(1)]), c.dy(0)!)];
};

const gather: GradientRule = (c) => {
  const { g, node } = c;
  const rank = g.rankOf(c.x(0));
  const axis = normAxis(attrInt(node, "axis", 0), rank);
  if (axis !== 0) throw new Error(`Gather node "${node.name}": only axis 0 (embedding rows) has a gradient rule, got axis ${axis}`);
  const table = c.x(0);
  let indices = c.x(1);
  if (g.typeOf(indices).type !== "int64") indices = g.op("Cast", [indices], { to: 7 });
  // Negative indices count from the end, as Gather allows.
  const rows = g.op("Gather", [g.op("Shape", [table]), g.ints([0])]);
  const wrapped = g.op("Where", [g.op("Less", [indices, g.constant([0], "int64", [])]), g.op("Add", [indices, rows]), indices]);
  const zeros = zerosOfShape(g, g.op("Shape", [table]), table);
  // Rows picked more than once sum their gradients.
  return [g.op("ScatterND", [zeros, g.op("Unsqueeze", [wrapped, g.ints([-1])]), c.dy(0)!], { reduction: "add" }), undefined];
};

const expand: GradientRule = (c) => [unbroadcast(c.g, c.dy(0)!, c.x(0)), undefined];

export const shapeRules: Record<string, GradientRule> = {
  Flatten: reshapeBack,
  Reshape: (c) => [reshapeLike(c.g, c.dy(0)!, c.x(0)), undefined],
  Squeeze: (c) => [reshapeLike(c.g, c.dy(0)!, c.x(0)), undefined],
  Unsqueeze: (c) => [reshapeLike(c.g, c.dy(0)!, c.x(0)), undefined],
  Transpose: transpose,
  Concat: concat,
  Split: (c) => [...split(c), undefined],
  Slice: (c) => [...slice(c), undefined, undefined, undefined, undefined],
  Gather: gather,
  Expand: expand,
};

