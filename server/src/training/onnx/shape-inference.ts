import type { Dim } from "./graph-builder.js";
import type { ElementType } from "./element-type.js";
import type { GraphNode, ShapeGraph, ValueType } from "./graph-types.js";
import { attrInt, attrInts, attrString, attrTensor, constantNodeValue } from "./attributes.js";
import { elementTypeOf, tensorNumbers } from "./tensor-data.js";

/**
 * Infers the element type and shape of a node's outputs from its inputs, for the ops the engine meets in
 * layer graphs, gradient graphs and PyTorch exports. Dims stay symbolic where the model leaves them open
 * (a dynamic batch); 1-D integer "shape" values are tracked element by element so Reshape targets built from
 * Shape→Gather→Concat chains keep their dims. Unknown ops get the first input's type and an unknown shape.
 */
export function inferNode(g: ShapeGraph, node: GraphNode): void {
  const set = (i: number, type: ElementType, dims: readonly Dim[] | undefined): void => {
    const name = node.outputs[i];
    if (name) g.types.set(name, { type, dims });
  };
  const t = (i: number): ValueType | undefined => (node.inputs[i] ? g.types.get(node.inputs[i]!) : undefined);
  const first = t(0);
  const dims0 = first?.dims;
  const sym = (i: number): readonly Dim[] | undefined => (node.inputs[i] ? g.symbolic.get(node.inputs[i]!) : undefined);
  const constInts = (i: number): number[] | undefined => {
    const c = node.inputs[i] ? g.constantOf(node.inputs[i]!) : undefined;
    return c ? tensorNumbers(c) : undefined;
  };
  const setSym = (i: number, values: readonly Dim[]): void => {
    if (node.outputs[i]) g.symbolic.set(node.outputs[i]!, values);
  };

  switch (node.opType) {
    case "Constant": {
      const value = constantNodeValue(node);
      if (!value) return;
      g.constValues.set(node.outputs[0]!, value);
      set(0, value.type, value.dims);
      if (value.dims.length === 1 && (value.type === "int64" || value.type === "int32")) setSym(0, tensorNumbers(value));
      if (value.dims.length === 0 && (value.type === "int64" || value.type === "int32")) setSym(0, tensorNumbers(value));
      return;
    }
    case "Identity":
    case "Relu":
    case "Tanh":
    case "Sigmoid":
    case "Erf":
    case "Exp":
    case "Log":
    case "Sqrt":
    case "Neg":
    case "Abs":
    case "Reciprocal":
    case "Softmax":
    case "LogSoftmax":
    case "LeakyRelu":
    case "Softplus":
    case "Clip":
    case "Sign":
    case "Floor":
    case "Ceil":
    case "Round":
    case "Cos":
    case "Sin":
    case "Tan":
    case "Atan":
    case "Asin":
    case "Acos":
    case "Cosh":
    case "Sinh":
    case "Elu":
    case "Selu":
    case "Celu":
    case "HardSigmoid":
    case "HardSwish":
    case "Softsign":
    case "Mish":
    case "Gelu":
    case "ThresholdedRelu":
      if (first) set(0, first.type, first.dims);
      if (node.opType === "Identity" && sym(0)) setSym(0, sym(0)!);
      return;
    case "Not":
    case "IsNaN":
    case "IsInf":
      if (first) set(0, "bool", first.dims);
      return;
    case "Dropout":
      if (first) {
        set(0, first.type, first.dims);
        set(1, "bool", first.dims);
      }
      return;
    case "Cast": {
      const to = elementTypeOf(attrInt(node, "to", 1)) ?? "float32";
      if (first) set(0, to, first.dims);
      if (sym(0)) setSym(0, sym(0)!);
      return;
    }
    case "Add":
    case "Sub":
    case "Mul":
    case "Div":
    case "Pow":
    case "Max":
    case "Min":
    case "Sum":
    case "Mean":
    case "Equal":
    case "Greater":
    case "Less":
    case "GreaterOrEqual":
    case "LessOrEqual":
    case "And":
    case "Or":
    case "Xor":
    case "Where": {
      const types = node.inputs.map((n) => g.types.get(n));
      const dataType = node.opType === "Where" ? types[1]?.type : types[0]?.type;
      if (!dataType) return;
      const boolOut = ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"].includes(node.opType);
      const allDims = types.map((x) => x?.dims);
      const dims = allDims.every((d) => d !== undefined) ? broadcastDims(allDims as (readonly Dim[])[]) : undefined;
      set(0, boolOut ? "bool" : dataType, dims);
      // Arithmetic on shape vectors (e.g. Mul of two dims) stays symbolic where it can.
      if (["Add", "Sub", "Mul", "Div"].includes(node.opType)) {
        const a = sym(0);
        const b = sym(1);
        if (a && b && (a.length === b.length || b.length === 1 || a.length === 1)) {
          const n = Math.max(a.length, b.length);
          const out: Dim[] = [];
          for (let i = 0; i < n; i++) out.push(arith(node.opType, a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!));
          setSym(0, out);
        }
      }
      return;
    }
    case "MatMul": {
      const a = dims0;
      const b = t(1)?.dims;
      if (!first) return;
      if (!a || !b) return set(0, first.type, undefined);
      const a2 = a.length === 1 ? [1, a[0]!] : a;
      const b2 = b.length === 1 ? [b[0]!, 1] : b;
      const batch = broadcastDims([a2.slice(0, -2), b2.slice(0, -2)]);
      const out: Dim[] = [...batch];
      if (a.length > 1) out.push(a2[a2.length - 2]!);
      if (b.length > 1) out.push(b2[b2.length - 1]!);
      return set(0, first.type, out);
    }
    case "Gemm": {
      const a = dims0;
      const b = t(1)?.dims;
      if (!first) return;
      if (!a || !b) return set(0, first.type, undefined);
      const m = attrInt(node, "transA", 0) ? a[1]! : a[0]!;
      const n = attrInt(node, "transB", 0) ? b[0]! : b[1]!;
      return set(0, first.type, [m, n]);
    }
    case "Conv":
    case "ConvTranspose":
    case "MaxPool":
    case "AveragePool":
    case "MaxUnpool":
      return inferWindowed(g, node, set);
    case "GlobalAveragePool":
    case "GlobalMaxPool":
      if (first) set(0, first.type, dims0 ? [dims0[0]!, dims0[1]!, ...dims0.slice(2).map(() => 1)] : undefined);
      return;
    case "Flatten": {
      if (!first) return;
      if (!dims0) return set(0, first.type, undefined);
      let axis = attrInt(node, "axis", 1);
      if (axis < 0) axis += dims0.length;
      return set(0, first.type, [product(dims0.slice(0, axis)), product(dims0.slice(axis))]);
    }
    case "Reshape": {
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
      return;
    }
    case "Shape": {
      if (!dims0) return set(0, "int64", [undefinedDim(node, 0)]);
      let start = attrInt(node, "start", 0);
      let end = attrInt(node, "end", dims0.length);
      if (start < 0) start += dims0.length;
      if (end < 0) end += dims0.length;
      const values = dims0.slice(start, Math.min(end, dims0.length));
      set(0, "int64", [values.length]);
      return setSym(0, values);
    }
    case "Size":
      if (dims0) setSym(0, [product(dims0)]);
      return set(0, "int64", []);
    case "Transpose": {
      if (!first) return;
      if (!dims0) return set(0, first.type, undefined);
      const perm = attrInts(node, "perm") ?? dims0.map((_, i) => dims0.length - 1 - i);
      return set(0, first.type, perm.map((p) => dims0[p]!));
    }
    case "Squeeze": {
      if (!first) return;
      const axes = (g.opset >= 13 ? constInts(1) : attrInts(node, "axes"))?.map((a) => (a < 0 && dims0 ? a + dims0.length : a));
      if (!dims0) return set(0, first.type, undefined);
      const out = dims0.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
      set(0, first.type, out);
      const s = sym(0);
      if (s && (dims0.length === 0 || dims0.length === 1)) setSym(0, s);
      return;
    }
    case "Unsqueeze": {
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
      return;
    }
    case "Concat": {
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
      return;
    }
    case "Split": {
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
      return;
    }
    case "Slice":
      return inferSlice(g, node, set, setSym);
    case "Gather": {
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
      return;
    }
    case "ReduceSum":
    case "ReduceMean":
    case "ReduceMax":
    case "ReduceMin":
    case "ReduceProd":
    case "ReduceSumSquare":
    case "ReduceL2": {
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
    }
    case "ArgMax":
    case "ArgMin": {
      if (!dims0) return set(0, "int64", undefined);
      let axis = attrInt(node, "axis", 0);
      if (axis < 0) axis += dims0.length;
      const keep = attrInt(node, "keepdims", 1) === 1;
      return set(0, "int64", dims0.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d])));
    }
    case "LayerNormalization": {
      if (!first || !dims0) return;
      let axis = attrInt(node, "axis", -1);
      if (axis < 0) axis += dims0.length;
      set(0, first.type, dims0);
      const stat = dims0.map((d, i) => (i < axis ? d : 1));
      set(1, first.type, stat);
      set(2, first.type, stat);
      return;
    }
    case "SoftmaxCrossEntropyLoss": {
      if (!first || !dims0) return;
      const reduction = attrString(node, "reduction", "mean");
      set(0, first.type, reduction === "none" ? [dims0[0]!, ...dims0.slice(2)] : []);
      set(1, first.type, dims0);
      return;
    }
    case "OneHot": {
      const depth = constInts(1);
      const values = t(2);
      if (!values || !dims0) return;
      let axis = attrInt(node, "axis", -1);
      const rank = dims0.length + 1;
      if (axis < 0) axis += rank;
      const out: Dim[] = [...dims0];
      out.splice(axis, 0, depth ? depth[0]! : (sym(1)?.[0] ?? `${node.outputs[0]}_depth`));
      return set(0, values.type, out);
    }
    case "Expand": {
      if (!first) return;
      const shape = sym(1);
      if (!shape || !dims0) return set(0, first.type, undefined);
      return set(0, first.type, broadcastDims([dims0, shape]));
    }
    case "ConstantOfShape": {
      const value = attrTensor(node, "value");
      const type = value?.type ?? "float32";
      const shape = sym(0);
      return set(0, type, shape ? [...shape] : undefined);
    }
    case "Range": {
      const [s, l, d] = [constInts(0), constInts(1), constInts(2)];
      const type = first?.type ?? "int64";
      return set(0, type, [s && l && d ? Math.max(Math.ceil((l[0]! - s[0]!) / d[0]!), 0) : `${node.outputs[0]}_len`]);
    }
    case "ScatterND":
    case "ScatterElements":
      if (first) set(0, first.type, dims0);
      return;
    case "Pad": {
      const pads = g.opset >= 11 ? constInts(1) : attrInts(node, "pads");
      if (!first || !dims0 || !pads) return first && set(0, first.type, undefined);
      const r = dims0.length;
      return set(0, first.type, dims0.map((d, i) => arith("Add", d, pads[i]! + pads[i + r]!)));
    }
    case "Tile": {
      const reps = constInts(1);
      if (!first || !dims0 || !reps) return first && set(0, first.type, undefined);
      return set(0, first.type, dims0.map((d, i) => arith("Mul", d, reps[i]!)));
    }
    default:
      if (first) node.outputs.forEach((_, i) => set(i, first.type, undefined));
  }
}

function undefinedDim(node: GraphNode, i: number): Dim {
  return `${node.outputs[0]}_d${i}`;
}

/** Numpy-style broadcasting of static or symbolic dims. */
export function broadcastDims(shapes: readonly (readonly Dim[])[]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[i - (rank - s.length)];
      if (d === undefined || d === 1) continue;
      if (dim === 1 || typeof dim === "string") dim = typeof d === "number" ? d : dim === 1 ? d : dim;
    }
    out.push(dim);
  }
  return out;
}

export function product(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((a, b) => arith("Mul", a, b), 1);
}

function divide(a: Dim, b: Dim): Dim {
  return arith("Div", a, b);
}

/** Arithmetic on dims: numbers fold; a symbol times 1 stays the symbol; anything else becomes a new symbol. */
function arith(op: string, a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") {
    switch (op) {
      case "Add":
        return a + b;
      case "Sub":
        return a - b;
      case "Mul":
        return a * b;
      default:
        return Math.trunc(a / b);
    }
  }
  if ((op === "Mul" || op === "Div") && b === 1) return a;
  if (op === "Mul" && a === 1) return b;
  if ((op === "Add" || op === "Sub") && b === 0) return a;
  return `(${a}${op === "Add" ? "+" : op === "Sub" ? "-" : op === "Mul" ? "*" : "/"}${b})`;
}

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
