// Shape rules of elementwise ops: same shape as the input, or numpy broadcasting of the inputs.
import { attrInt } from "../attributes.js";
import { elementTypeOf } from "../tensor-data.js";
import { arith, broadcastDims } from "./dim-arithmetic.js";
import type { Dim } from "../graph-builder.js";
import type { ShapeRule } from "./shape-rule.js";

const sameShape: ShapeRule = ({ node, set, first, sym, setSym }) => {
  if (first) set(0, first.type, first.dims);
  if (node.opType === "Identity" && sym(0)) setSym(0, sym(0)!);
};

const boolOfSameShape: ShapeRule = ({ set, first }) => {
  if (first) set(0, "bool", first.dims);
};

const dropout: ShapeRule = ({ set, first }) => {
  if (first) {
    set(0, first.type, first.dims);
    set(1, "bool", first.dims);
  }
};

const cast: ShapeRule = ({ node, set, first, sym, setSym }) => {
  const to = elementTypeOf(attrInt(node, "to", 1)) ?? "float32";
  if (first) set(0, to, first.dims);
  if (sym(0)) setSym(0, sym(0)!);
};

const broadcasting: ShapeRule = ({ node, g, set, sym, setSym }) => {
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
};

const sameAsData: ShapeRule = ({ set, first, dims0 }) => {
  if (first) set(0, first.type, dims0);
};

export const elementwiseShapes: Readonly<Record<string, ShapeRule>> = {
  Identity: sameShape,
  Relu: sameShape,
  Tanh: sameShape,
  Sigmoid: sameShape,
  Erf: sameShape,
  Exp: sameShape,
  Log: sameShape,
  Sqrt: sameShape,
  Neg: sameShape,
  Abs: sameShape,
  Reciprocal: sameShape,
  Softmax: sameShape,
  LogSoftmax: sameShape,
  LeakyRelu: sameShape,
  PRelu: sameShape,
  Softplus: sameShape,
  Clip: sameShape,
  Sign: sameShape,
  Floor: sameShape,
  Ceil: sameShape,
  Round: sameShape,
  Cos: sameShape,
  Sin: sameShape,
  Tan: sameShape,
  Atan: sameShape,
  Asin: sameShape,
  Acos: sameShape,
  Cosh: sameShape,
  Sinh: sameShape,
  Elu: sameShape,
  Selu: sameShape,
  Celu: sameShape,
  HardSigmoid: sameShape,
  HardSwish: sameShape,
  Softsign: sameShape,
  Mish: sameShape,
  Gelu: sameShape,
  ThresholdedRelu: sameShape,
  Not: boolOfSameShape,
  IsNaN: boolOfSameShape,
  IsInf: boolOfSameShape,
  Dropout: dropout,
  Cast: cast,
  Add: broadcasting,
  Sub: broadcasting,
  Mul: broadcasting,
  Div: broadcasting,
  Pow: broadcasting,
  Max: broadcasting,
  Min: broadcasting,
  Sum: broadcasting,
  Mean: broadcasting,
  Equal: broadcasting,
  Greater: broadcasting,
  Less: broadcasting,
  GreaterOrEqual: broadcasting,
  LessOrEqual: broadcasting,
  And: broadcasting,
  Or: broadcasting,
  Xor: broadcasting,
  Where: broadcasting,
  ScatterND: sameAsData,
  ScatterElements: sameAsData,
};
