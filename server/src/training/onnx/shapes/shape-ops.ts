// Shape rules of ops that move data around: reshape, transpose, concat, split, slice, gather, pad, tile...
// Where the data is a 1-D shape vector its values are followed too, so Reshape targets keep their dims.
import { attrInt, attrInts, attrTensor } from "../attributes.js";
import { tensorNumbers } from "../tensor-data.js";
import { arith, broadcastDims, divide, product, undefinedDim } from "./dim-arithmetic.js";
import type { Dim } from "../graph-builder.js";
import type { ElementType } from "../element-type.js";
import type { GraphNode, ShapeGraph } from "../graph-types.js";
import type { ShapeRule } from "./shape-rule.js";

const flatten: ShapeRule = ({ node, set, first, dims0 }) => {
  if (!first) return;
  if (!dims0) return set(0, first.type, undefined);
  let axis = attrInt(node, "axis", 1);
  if (axis < 0) axis += dims0.length;
  return set(0, first.type, [product(dims0.slice(0, axis)), product(dims0.slice(axis))]);
};

const reshape: ShapeRule = ({ node, set, t, first, dims0, sym, setSym }) => {
  if (!first) return;
  const target = sym(1);
  if (!target) {
    const len = t(1)?.dims?.[0];
    return set(0, first.type, typeof len === "number" ? Array.from({ length: len }, (_, i) => `${node.outputs[0]}_d${i}`) : undefined);
  }
  const out = target.map((d, i) => (d === 0 && attrInt(node, "allowzero", 0) === 0 ? (dims0?.[i] ?? `${node.outputs[0]}_d${i}`) : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = out.filter((_, i) => i !== minus);
    out[minus] = dims0 ? divide(product(dims0), product(known)) : `${node.outputs[0]}_d${minus}`;
  }
  set(0, first.type, out);
  if (sym(0)) setSym(0, sym(0)!);
};

const shape: ShapeRule = ({ node, set, dims0, setSym }) => {
  if (!dims0) return set(0, "int64", [undefinedDim(node, 0)]);
  let start = attrInt(node, "start", 0);
  let end = attrInt(node, "end", dims0.length);
  if (start < 0) start += dims0.length;
  if (end < 0) end += dims0.length;
  const values = dims0.slice(start, Math.min(end, dims0.length));
  set(0, "int64", [values.length]);
  return setSym(0, values);
};

const size: ShapeRule = ({ set, dims0, setSym }) => {
  if (dims0) setSym(0, [product(dims0)]);
  return set(0, "int64", []);
};

const transpose: ShapeRule = ({ node, set, first, dims0 }) => {
  if (!first) return;
  if (!dims0) return set(0, first.type, undefined);
  const perm = attrInts(node, "perm") ?? dims0.map((_, i) => dims0.length - 1 - i);
  return set(0, first.type, perm.map((p) => dims0[p]!));
};

const squeeze: ShapeRule = ({ node, g, set, first, dims0, sym, constInts, setSym }) => {
  if (!first) return;
  const axes = (g.opset >= 13 ? constInts(1) : attrInts(node, "axes"))?.map((a) => (a < 0 && dims0 ? a + dims0.length : a));
  if (!dims0) return set(0, first.type, undefined);
  const out = dims0.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
  set(0, first.type, out);
  const s = sym(0);
  if (s && (dims0.length === 0 || dims0.length === 1)) setSym(0, s);
};

const unsqueeze: ShapeRule = ({ node, g, set, first, dims0, sym, constInts, setSym }) => {
  if (!first) return;
  const axesRaw = g.opset >= 13 ? constInts(1) : attrInts(node, "axes");
  if (!dims0 || !axesRaw) return set(0, first.type, undefined);
  const rank = dims0.length + axesRaw.length;
  const axes = axesRaw.map((a) => (a < 0 ? a + rank : a)).sort((x, y) => x - y);
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(axes.includes(i) ? 1 : dims0[k++]!);
  set(0, first.type, out);
  const s = sym(0);
  if (s && dims0.length === 0) setSym(0, s);
};

const concat: ShapeRule = ({ node, g, set, first, setSym }) => {
  if (!first) return;
  const all = node.inputs.map((n) => g.types.get(n)?.dims);
  if (all.some((d) => !d)) return set(0, first.type, undefined);
  let axis = attrInt(node, "axis", 0);
  const rank = all[0]!.length;
  if (axis < 0) axis += rank;
  const out = [...all[0]!];
  out[axis] = all.map((d) => d![axis]!).reduce((a, b) => arith("Add", a, b));
  set(0, first.type, out);
  if (rank === 1) {
    const parts = node.inputs.map((n) => g.symbolic.get(n));
    if (parts.every((p) => p)) setSym(0, parts.flatMap((p) => [...p!]));
  }
};

const split: ShapeRule = ({ node, g, set, first, dims0, constInts }) => {
  if (!first || !dims0) return;
  let axis = attrInt(node, "axis", 0);
  if (axis < 0) axis += dims0.length;
  const sizes = (g.opset >= 13 ? constInts(1) : attrInts(node, "split")) ?? undefined;
  const total = dims0[axis]!;
  node.outputs.forEach((_, i) => {
    const size: Dim = sizes ? sizes[i]! : typeof total === "number" ? total / node.outputs.length : `${node.outputs[i]}_split`;
    const out = [...dims0];
    out[axis] = size;
    set(i, first.type, out);
  });
};

const slice: ShapeRule = ({ node, g, set, setSym }) => {
  return inferSlice(g, node, set, setSym);
};

const gather: ShapeRule = ({ node, set, t, first, dims0, sym, constInts, setSym }) => {
  if (!first) return;
  const idx = t(1)?.dims;
  if (!dims0 || !idx) return set(0, first.type, undefined);
  let axis = attrInt(node, "axis", 0);
  if (axis < 0) axis += dims0.length;
  set(0, first.type, [...dims0.slice(0, axis), ...idx, ...dims0.slice(axis + 1)]);
  const s = sym(0);
  const at = constInts(1);
  if (s && at && dims0.length === 1) {
    const picked = at.map((i) => s[i < 0 ? i + s.length : i]!);
    setSym(0, picked);
  }
};

const oneHot: ShapeRule = ({ node, set, t, dims0, sym, constInts }) => {
  const depth = constInts(1);
  const values = t(2);
  if (!values || !dims0) return;
  let axis = attrInt(node, "axis", -1);
  const rank = dims0.length + 1;
  if (axis < 0) axis += rank;
  const out: Dim[] = [...dims0];
  out.splice(axis, 0, depth ? depth[0]! : (sym(1)?.[0] ?? `${node.outputs[0]}_depth`));
  return set(0, values.type, out);
};

const expand: ShapeRule = ({ set, first, dims0, sym }) => {
  if (!first) return;
  const shape = sym(1);
  if (!shape || !dims0) return set(0, first.type, undefined);
  return set(0, first.type, broadcastDims([dims0, shape]));
};

const constantOfShape: ShapeRule = ({ node, set, sym }) => {
  const value = attrTensor(node, "value");
  const type = value?.type ?? "float32";
  const shape = sym(0);
  return set(0, type, shape ? [...shape] : undefined);
};

const range: ShapeRule = ({ node, set, first, constInts }) => {
  const [s, l, d] = [constInts(0), constInts(1), constInts(2)];
  const type = first?.type ?? "int64";
  return set(0, type, [s && l && d ? Math.max(Math.ceil((l[0]! - s[0]!) / d[0]!), 0) : `${node.outputs[0]}_len`]);
};

const pad: ShapeRule = ({ node, g, set, first, dims0, constInts }) => {
  const pads = g.opset >= 11 ? constInts(1) : attrInts(node, "pads");
  if (!first || !dims0) return first && set(0, first.type, undefined);
  const r = dims0.length;
  // Pads computed at run time: the rank is known, the dims are not.
  if (!pads) return set(0, first.type, dims0.map((_, i) => `${node.outputs[0]}_d${i}`));
  return set(0, first.type, dims0.map((d, i) => arith("Add", d, pads[i]! + pads[i + r]!)));
};

const tile: ShapeRule = ({ set, first, dims0, constInts }) => {
  const reps = constInts(1);
  if (!first || !dims0 || !reps) return first && set(0, first.type, undefined);
  return set(0, first.type, dims0.map((d, i) => arith("Mul", d, reps[i]!)));
};

export const shapeOpsShapes: Readonly<Record<string, ShapeRule>> = {
  Flatten: flatten,
  Reshape: reshape,
  Shape: shape,
  Size: size,
  Transpose: transpose,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  OneHot: oneHot,
  Expand: expand,
  ConstantOfShape: constantOfShape,
  Range: range,
  Pad: pad,
  Tile: tile,
};

function inferSlice(
  g: ShapeGraph,
  node: GraphNode,
  set: (i: number, type: ElementType, dims: readonly Dim[] | undefined) => void,
  setSym: (i: number, values: readonly Dim[]) => void,
): void {
  const x = g.types.get(node.inputs[0]!);
  if (!x) return;
  const dims = x.dims;
  const ints = (i: number): number[] | undefined => {
    const c = node.inputs[i] ? g.constantOf(node.inputs[i]!) : undefined;
    return c ? tensorNumbers(c) : undefined;
  };
  const starts = g.opset >= 10 ? ints(1) : attrInts(node, "starts");
  const ends = g.opset >= 10 ? ints(2) : attrInts(node, "ends");
  if (!dims || !starts || !ends) return set(0, x.type, dims?.map((_, i) => `${node.outputs[0]}_d${i}`));
  const axes = (g.opset >= 10 ? (node.inputs[3] ? ints(3) : undefined) : attrInts(node, "axes")) ?? starts.map((_, i) => i);
  const steps = (node.inputs[4] ? ints(4) : undefined) ?? starts.map(() => 1);
  const out = [...dims];
  const symIn = g.symbolic.get(node.inputs[0]!);
  let symOut: Dim[] | undefined = symIn ? [...symIn] : undefined;
  axes.forEach((a, j) => {
    const axis = a < 0 ? a + dims.length : a;
    const d = dims[axis]!;
    if (typeof d !== "number") {
      out[axis] = `${node.outputs[0]}_d${axis}`;
      symOut = undefined;
      return;
    }
    const [s, e, st] = sliceRange(starts[j]!, ends[j]!, steps[j]!, d);
    out[axis] = st > 0 ? Math.max(0, Math.ceil((e - s) / st)) : Math.max(0, Math.ceil((s - e) / -st));
    if (symOut && axis === 0) {
      const picked: Dim[] = [];
      for (let k = s; st > 0 ? k < e : k > e; k += st) picked.push(symIn![k]!);
      symOut = picked;
    }
  });
  set(0, x.type, out);
  if (symOut && dims.length === 1) setSym(0, symOut);
}

/** Clamped [start, end, step] of one Slice axis, as the ONNX spec defines them. */
export function sliceRange(start: number, end: number, step: number, dim: number): [number, number, number] {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
  } else {
    s = clamp(s, 0, dim - 1);
    e = clamp(e, -1, dim - 1);
  }
  return [s, e, step];
}
