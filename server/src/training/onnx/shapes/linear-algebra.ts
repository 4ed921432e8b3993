// Shape rules of MatMul and Gemm.
import { attrInt } from "../attributes.js";
import { broadcastDims } from "./dim-arithmetic.js";
import type { Dim } from "../graph-builder.js";
import type { ShapeRule } from "./shape-rule.js";

const matMul: ShapeRule = ({ set, t, first, dims0 }) => {
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
};

const gemm: ShapeRule = ({ node, set, t, first, dims0 }) => {
  const a = dims0;
  const b = t(1)?.dims;
  if (!first) return;
  if (!a || !b) return set(0, first.type, undefined);
  const m = attrInt(node, "transA", 0) ? a[1]! : a[0]!;
  const n = attrInt(node, "transB", 0) ? b[0]! : b[1]!;
  return set(0, first.type, [m, n]);
};

export const linearAlgebraShapes: Readonly<Record<string, ShapeRule>> = {
  MatMul: matMul,
  Gemm: gemm,
};
