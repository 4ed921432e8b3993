import { attrFloat, attrInt } from "../../onnx/attributes.js";
import type { Graph } from "../../onnx/graph.js";
import type { GradientRule } from "../gradient-rule.js";
import { transposeLast2, unbroadcast, unsqueeze } from "../grad-ops.js";

function scale(g: Graph, x: string, alpha: number): string {
  return alpha === 1 ? x : g.op("Mul", [x, g.scalarLike(alpha, x)]);
}

const matMul: GradientRule = (c) => {
  const { g } = c;
  let a = c.x(0);
  let b = c.x(1);
  let dy = c.dy(0)!;
  const ra = g.rankOf(a);
  const rb = g.rankOf(b);
  // Vectors are promoted to matrices as MatMul does, and the gradient is reshaped back at the end.
  if (ra === 1) {
    a = unsqueeze(g, a, [0]);
    dy = unsqueeze(g, dy, [-2]);
  }
  if (rb === 1) {
    b = unsqueeze(g, b, [1]);
    dy = unsqueeze(g, dy, [-1]);
  }
  let da: string | undefined;
  let db: string | undefined;
  if (c.wants(0)) {
    da = g.op("MatMul", [dy, transposeLast2(g, b)]);
    if (ra === 1) da = g.op("Reshape", [da, g.op("Shape", [c.x(0)])]);
    else da = unbroadcast(g, da, c.x(0));
  }
  if (c.wants(1)) {
    const bd = g.dimsOf(b)!;
    const ad = g.dimsOf(a)!;
    if (rb === 2 && ad.length > 2 && typeof bd[0] === "number" && typeof bd[1] === "number") {
      // A weight shared across a batch of rows ([..., K] @ [K, N]): one GEMM over all rows instead of a
      // batched MatMul and a sum.
      const a2 = g.op("Reshape", [a, g.ints([-1, bd[0]])]);
      const dy2 = g.op("Reshape", [dy, g.ints([-1, bd[1]])]);
      db = g.op("Gemm", [a2, dy2], { transA: 1 });
    } else {
      db = unbroadcast(g, g.op("MatMul", [transposeLast2(g, a), dy]), b);
    }
    if (rb === 1) db = g.op("Reshape", [db, g.op("Shape", [c.x(1)])]);
  }
  return [da, db];
};

const gemm: GradientRule = (c) => {
  const { g, node } = c;
  const alpha = attrFloat(node, "alpha", 1);
  const beta = attrFloat(node, "beta", 1);
  const transA = attrInt(node, "transA", 0);
  const transB = attrInt(node, "transB", 0);
  const [a, b] = [c.x(0), c.x(1)];
  const dy = c.dy(0)!;
  let da: string | undefined;
  let db: string | undefined;
  let dc: string | undefined;
  // Y = alpha * op(A) op(B) + beta * C
  if (c.wants(0)) {
    da = transA
      ? g.op("Gemm", [b, dy], { transA: transB, transB: 1, alpha: { float: alpha } })
      : g.op("Gemm", [dy, b], { transB: transB ? 0 : 1, alpha: { float: alpha } });
  }
  if (c.wants(1)) {
    db = transB
      ? g.op("Gemm", [dy, a], { transA: 1, transB: transA, alpha: { float: alpha } })
      : g.op("Gemm", [a, dy], { transA: transA ? 0 : 1, alpha: { float: alpha } });
  }
  if (node.inputs[2] && c.wants(2)) dc = unbroadcast(g, scale(g, dy, beta), c.x(2));
  return [da, db, dc];
};

export const linearAlgebraRules: Record<string, GradientRule> = { MatMul: matMul, Gemm: gemm };
