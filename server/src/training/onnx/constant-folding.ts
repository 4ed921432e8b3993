import type { ConstTensor } from "./graph-builder.js";
import { numericOp } from "./shapes/dim-arithmetic.js";
import type { Graph, GraphNode } from "./graph.js";
import { attrInt, attrInts, attrTensor } from "./attributes.js";
import { elementTypeOf, tensorNumbers } from "./tensor-data.js";
import type { ElementType } from "./element-type.js";

// Folds the integer "shape arithmetic" exporters leave behind (Shape → Gather → Unsqueeze → Concat → Reshape)
// into initializers wherever the dims are known, so train graphs carry no per-step shape computation and
// gradient rules see constant targets.

const FOLDABLE = new Set([
  "Constant",
  "Shape",
  "Size",
  "Identity",
  "Cast",
  "Unsqueeze",
  "Squeeze",
  "Reshape",
  "Transpose",
  "Concat",
  "Gather",
  "Slice",
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Equal",
  "Where",
  "ConstantOfShape",
  "Range",
  "ReduceProd",
]);

const MAX_ELEMENTS = 4096;

interface Small {
  readonly type: ElementType;
  readonly dims: number[];
  readonly values: number[];
}

function toConst(s: Small): ConstTensor {
  const data =
    s.type === "int64"
      ? BigInt64Array.from(s.values, (v) => BigInt(Math.trunc(v)))
      : s.type === "int32"
        ? Int32Array.from(s.values)
        : s.type === "bool"
          ? Uint8Array.from(s.values)
          : s.type === "float64"
            ? Float64Array.from(s.values)
            : Float32Array.from(s.values);
  return { type: s.type, dims: s.dims, data };
}

function read(g: Graph, name: string): Small | undefined {
  const c = g.constantOf(name);
  if (c && c.type !== "float16" && c.data.length <= MAX_ELEMENTS) return { type: c.type, dims: [...c.dims], values: tensorNumbers(c) };
  return undefined;
}

const count = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Ops whose value follows from shapes or the node itself, not from constant inputs; "no" for other ops. */
function foldStructural(g: Graph, node: GraphNode): Small | undefined | "no" {
  switch (node.opType) {
    case "Shape": {
      const dims = g.dimsOf(node.inputs[0]!);
      const values = g.symbolic.get(node.outputs[0]!);
      if (!dims || !values || values.some((d) => typeof d !== "number")) return undefined;
      return { type: "int64", dims: [values.length], values: values as number[] };
    }
    case "Size": {
      const dims = g.dimsOf(node.inputs[0]!);
      if (!dims || dims.some((d) => typeof d !== "number")) return undefined;
      return { type: "int64", dims: [], values: [count(dims as number[])] };
    }
    case "Constant": {
      const c = g.constantOf(node.outputs[0]!);
      return c && c.type !== "float16" ? { type: c.type, dims: [...c.dims], values: tensorNumbers(c) } : undefined;
    }
    default:
      return "no";
  }
}

/** Elementwise arithmetic on two small tensors, one of them possibly a scalar. */
function foldBinary(op: string, x: Small, y: Small): Small | undefined {
  if (!(x.values.length === y.values.length || y.values.length === 1 || x.values.length === 1)) return undefined;
  const n = Math.max(x.values.length, y.values.length);
  const dims = x.values.length >= y.values.length ? x.dims : y.dims;
  const integer = !x.type.startsWith("float");
  const values = Array.from({ length: n }, (_, i) => {
    const a = x.values[x.values.length === 1 ? 0 : i]!;
    const b = y.values[y.values.length === 1 ? 0 : i]!;
    return numericOp(op, a, b, integer);
  });
  return { type: op === "Equal" ? "bool" : x.type, dims, values };
}

/** Slice of a small tensor along any of its axes (steps may be negative, as torch's flips use). */
function foldSlice(x: Small, ins: readonly (Small | undefined)[]): Small | undefined {
  const rank = x.dims.length;
  const starts = ins[1]!.values;
  const ends = ins[2]!.values;
  const axes = ins[3]?.values.map((a) => (a < 0 ? a + rank : a)) ?? starts.map((_, i) => i);
  const steps = ins[4]?.values ?? axes.map(() => 1);
  // Per axis, the source indices it keeps.
  const picks = x.dims.map((n) => Array.from({ length: n }, (_, i) => i));
  axes.forEach((axis, k) => {
    const n = x.dims[axis]!;
    const step = steps[k]!;
    let start = starts[k]!;
    let end = ends[k]!;
    start = start < 0 ? start + n : start;
    end = end < 0 ? end + n : end;
    start = step > 0 ? Math.min(Math.max(start, 0), n) : Math.min(Math.max(start, -1), n - 1);
    end = step > 0 ? Math.min(Math.max(end, 0), n) : Math.min(Math.max(end, -1), n - 1);
    const kept: number[] = [];
    for (let i = start; step > 0 ? i < end : i > end; i += step) kept.push(i);
    picks[axis] = kept;
  });
  const dims = picks.map((p) => p.length);
  const strides = x.dims.map((_, i) => x.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const values: number[] = [];
  const visit = (axis: number, offset: number): void => {
    if (axis === rank) {
      values.push(x.values[offset]!);
      return;
    }
    for (const i of picks[axis]!) visit(axis + 1, offset + i * strides[axis]!);
  };
  visit(0, 0);
  return { type: x.type, dims, values };
}

/** Transpose of a small tensor (torch's Pad exports reverse its pads with Reshape → Transpose → Reshape). */
function foldTranspose(x: Small, permAttr: number[] | undefined): Small {
  const rank = x.dims.length;
  const perm = permAttr ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const dims = perm.map((p) => x.dims[p]!);
  const strides = x.dims.map((_, i) => x.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const values = new Array<number>(x.values.length);
  const index = new Array<number>(rank).fill(0);
  for (let out = 0; out < values.length; out++) {
    let from = 0;
    for (let k = 0; k < rank; k++) from += index[k]! * strides[perm[k]!]!;
    values[out] = x.values[from]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k]! < dims[k]!) break;
      index[k] = 0;
    }
  }
  return { type: x.type, dims, values };
}

function evaluate(g: Graph, node: GraphNode): Small | undefined {
  const ins = node.inputs.map((n) => (n ? read(g, n) : undefined));
  const x = ins[0];
  const structural = foldStructural(g, node);
  if (structural !== "no") return structural;
  if (node.inputs.some((n, i) => n && !ins[i])) return undefined;
  if (!x) return undefined;
  switch (node.opType) {
    case "Identity":
      return x;
    case "Cast": {
      const type = elementTypeOf(attrInt(node, "to", 1));
      if (!type || type === "float16") return undefined;
      const values = type.startsWith("int") || type.startsWith("uint") ? x.values.map(Math.trunc) : type === "bool" ? x.values.map((v) => (v ? 1 : 0)) : x.values;
      return { type, dims: x.dims, values };
    }
    case "Transpose":
      return foldTranspose(x, attrInts(node, "perm"));
    case "Reshape":
    case "Unsqueeze":
    case "Squeeze": {
      const dims = g.dimsOf(node.outputs[0]!);
      return dims && dims.every((d) => typeof d === "number") ? { ...x, dims: dims as number[] } : undefined;
    }
    case "Concat": {
      if (ins.some((t) => t!.dims.length > 1)) return undefined;
      const values = ins.flatMap((t) => t!.values);
      return { type: x.type, dims: [values.length], values };
    }
    case "Gather": {
      const idx = ins[1]!;
      if (x.dims.length !== 1 || attrInt(node, "axis", 0) !== 0) return undefined;
      const values = idx.values.map((i) => x.values[i < 0 ? i + x.values.length : i]!);
      return { type: x.type, dims: idx.dims, values };
    }
    case "Slice":
      return foldSlice(x, ins);
    case "Add":
    case "Sub":
    case "Mul":
    case "Div":
    case "Equal":
      return foldBinary(node.opType, x, ins[1]!);
    case "Where": {
      const [a, b] = [ins[1]!, ins[2]!];
      if (a.values.length !== x.values.length || b.values.length !== x.values.length) return undefined;
      return { type: a.type, dims: x.dims, values: x.values.map((c, i) => (c ? a.values[i]! : b.values[i]!)) };
    }
    case "ConstantOfShape": {
      const n = count(x.values);
      if (n > MAX_ELEMENTS) return undefined;
      const v = attrTensor(node, "value");
      return { type: v?.type ?? "float32", dims: x.values, values: Array(n).fill(v ? tensorNumbers(v)[0] : 0) };
    }
    case "Range": {
      const [start, limit, delta] = [x.values[0]!, ins[1]!.values[0]!, ins[2]!.values[0]!];
      const n = Math.max(Math.ceil((limit - start) / delta), 0);
      if (n > MAX_ELEMENTS) return undefined;
      return { type: x.type, dims: [n], values: Array.from({ length: n }, (_, i) => start + i * delta) };
    }
    case "ReduceProd":
      if (x.dims.length !== 1 || node.inputs.length > 1) return undefined;
      return { type: x.type, dims: attrInt(node, "keepdims", 1) ? [1] : [], values: [x.values.reduce((a, b) => a * b, 1)] };
    default:
      return undefined;
  }
}

/** Ops that read only their input's dims, never its values. */
const READS_DIMS_ONLY = new Set(["Shape", "Size"]);

/**
 * Values computed from a variable (a parameter being trained): folding one would freeze its initial value
 * into a new constant, and its gradient would no longer reach the parameter (PyTorch exports read shared
 * weights through Identity). Shape and Size read only dims, so what follows them stays foldable.
 */
function variableValues(g: Graph, variables: ReadonlySet<string>): Set<string> {
  const derived = new Set(variables);
  for (const node of g.nodes) {
    if (READS_DIMS_ONLY.has(node.opType)) continue;
    if (node.inputs.some((i) => i && derived.has(i))) for (const out of node.outputs) if (out) derived.add(out);
  }
  return derived;
}

export interface FoldOptions {
  /** Initializers whose values change (the parameters being trained): nothing computed from them is folded. */
  readonly variables?: Iterable<string>;
}

/** Replaces every foldable node by an initializer holding its value, then drops what no output needs. Returns the count folded. */
export function foldConstants(g: Graph, options: FoldOptions = {}): number {
  const variable = variableValues(g, new Set(options.variables ?? []));
  let folded = 0;
  for (const node of [...g.nodes]) {
    if (node.domain !== "" || !FOLDABLE.has(node.opType) || node.outputs.length !== 1) continue;
    if (variable.has(node.outputs[0]!)) continue;
    const value = evaluate(g, node);
    if (!value) continue;
    g.replaceWithConstant(node, toConst(value));
    folded++;
  }
  g.prune();
  return folded;
}
