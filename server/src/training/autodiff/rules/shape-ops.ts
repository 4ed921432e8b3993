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

/**
 * Gather's gradient scatters dY back into zeros of X's shape, summing rows picked more than once. Along an axis
 * other than 0 the same is done on X with that axis moved first (and dY's index dims moved first to match).
 */
const gather: GradientRule = (c) => {
  const { g, node } = c;
  const rank = g.rankOf(c.x(0));
  const axis = normAxis(attrInt(node, "axis", 0), rank);
  const q = g.rankOf(c.x(1));
  let indices = c.x(1);
  if (g.typeOf(indices).type !== "int64") indices = g.op("Cast", [indices], { to: 7 });
  const toFront = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
  const table = axis === 0 ? c.x(0) : g.op("Transpose", [c.x(0)], { perm: toFront });
  let dy = c.dy(0)!;
  if (axis !== 0) {
    // dY is X.shape[:axis] + indices.shape + X.shape[axis+1:]: bring the index dims first.
    const yRank = rank - 1 + q;
    const perm = [...Array.from({ length: q }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: yRank - axis - q }, (_, i) => axis + q + i)];
    dy = g.op("Transpose", [dy], { perm });
  }
  // Negative indices count from the end, as Gather allows.
  const rows = g.op("Gather", [g.op("Shape", [table]), g.constant([0], "int64", [])]);
  const wrapped = g.op("Where", [g.op("Less", [indices, g.constant([0], "int64", [])]), g.op("Add", [indices, rows]), indices]);
  const zeros = zerosOfShape(g, g.op("Shape", [table]), table);
  const scattered = g.op("ScatterND", [zeros, g.op("Unsqueeze", [wrapped, g.ints([-1])]), dy], { reduction: "add" });
  if (axis === 0) return [scattered, undefined];
  const back = toFront.map((_, i) => toFront.indexOf(i));
  return [g.op("Transpose", [scattered], { perm: back }), undefined];
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

