import type { Dim } from "../onnx/graph-builder.js";
import type { Graph } from "../onnx/graph.js";

// Small emitters shared by the gradient rules; they pick the operator form the graph's opset expects.

export function reduceSum(g: Graph, x: string, axes: readonly number[], keepdims: boolean): string {
  if (axes.length === 0) return x;
  return g.op("ReduceSum", [x, g.ints(axes)], { keepdims: keepdims ? 1 : 0 });
}

export function reduceMean(g: Graph, x: string, axes: readonly number[], keepdims: boolean): string {
  if (g.opset >= 18) return g.op("ReduceMean", [x, g.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  return g.op("ReduceMean", [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
}

export function unsqueeze(g: Graph, x: string, axes: readonly number[]): string {
  return g.op("Unsqueeze", [x, g.ints(axes)]);
}

/** A per-channel vector [C] shaped to broadcast over axis 1 of a rank-`rank` NC… tensor. */
export function perChannel(g: Graph, v: string, rank: number): string {
  return rank <= 2 ? v : unsqueeze(g, v, Array.from({ length: rank - 2 }, (_, i) => i + 1));
}

export function reshapeLike(g: Graph, x: string, like: string): string {
  const dims = g.dimsOf(like);
  const dimsOfX = g.dimsOf(x);
  if (dims && dimsOfX && sameDims(dims, dimsOfX)) return x;
  if (dims && dims.every((d) => typeof d === "number")) return g.op("Reshape", [x, g.ints(dims as number[])]);
  return g.op("Reshape", [x, g.op("Shape", [like])]);
}

export function expandLike(g: Graph, x: string, like: string): string {
  const dims = g.dimsOf(like);
  if (dims && dims.every((d) => typeof d === "number")) return g.op("Expand", [x, g.ints(dims as number[])]);
  return g.op("Expand", [x, g.op("Shape", [like])]);
}

export function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Sums a gradient over the axes numpy broadcasting added or stretched, so it takes the shape of `target`.
 * Dims known as 1 in the target but not in the gradient are summed; a symbolic target dim is taken to match.
 */
export function unbroadcast(g: Graph, grad: string, target: string): string {
  const gd = g.dimsOf(grad);
  const td = g.dimsOf(target);
  if (!gd || !td) throw new Error(`gradient of "${target}": the ranks of "${grad}" and "${target}" must be known to undo broadcasting`);
  if (sameDims(gd, td)) return grad;
  const lead = gd.length - td.length;
  const leading = Array.from({ length: lead }, (_, i) => i);
  let out = reduceSum(g, grad, leading, false);
  const stretched: number[] = [];
  td.forEach((d, i) => {
    if (d === 1 && gd[i + lead] !== 1) stretched.push(i);
  });
  out = reduceSum(g, out, stretched, true);
  return out;
}

/** Swaps the last two axes. */
export function transposeLast2(g: Graph, x: string): string {
  const rank = g.rankOf(x);
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return g.op("Transpose", [x], { perm });
}

/** Element count of a value as a scalar of `like`'s element type: static when the dims are, else from Size. */
export function countOf(g: Graph, x: string, like: string): string {
  const dims = g.dimsOf(x);
  if (dims && dims.every((d) => typeof d === "number")) {
    return g.scalarLike((dims as number[]).reduce((a, b) => a * b, 1), like);
  }
  return g.op("Cast", [g.op("Size", [x])], { to: onnxTypeCode(g, like) });
}

export function onnxTypeCode(g: Graph, like: string): number {
  const type = g.typeOf(like).type;
  return type === "float64" ? 11 : type === "float16" ? 10 : 1;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Zeros of `like`'s element type in the shape a 1-D int64 value holds. */
export function zerosOfShape(g: Graph, shape: string, like: string): string {
  const type = g.typeOf(like).type;
  return g.op("ConstantOfShape", [shape], {
    value: { type, dims: [1], data: type === "float64" ? new Float64Array(1) : new Float32Array(1) },
  });
}

/**
 * The gradient of a selection: each element of `grad` added into the flattened `x` at the flat position
 * `flatIndices` names (positions picked twice sum), reshaped to x's shape.
 */
export function scatterAddFlat(g: Graph, x: string, flatIndices: string, grad: string): string {
  const zeros = zerosOfShape(g, g.op("Reshape", [g.op("Size", [x]), g.ints([1])]), x);
  const flat = g.op("ScatterElements", [zeros, g.op("Reshape", [flatIndices, g.ints([-1])]), g.op("Reshape", [grad, g.ints([-1])])], { reduction: "add" });
  return g.op("Reshape", [flat, g.op("Shape", [x])]);
}
