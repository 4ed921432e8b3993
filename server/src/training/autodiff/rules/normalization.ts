import { attrFloat, attrInt } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { normAxis, perChannel, reduceMean, reduceSum } from "../grad-ops.js";

const softmax: GradientRule = (c) => {
  const { g, node } = c;
  if (g.opset < 13) throw new Error(`Softmax node "${node.name}": opset ${g.opset} semantics (2-D coercion) have no gradient rule; use opset 13+`);
  const y = c.y(0);
  const axis = normAxis(attrInt(node, "axis", -1), g.rankOf(y));
  const dy = c.dy(0)!;
  // dX = Y * (dY - sum(dY * Y))
  const dot = reduceSum(g, g.op("Mul", [dy, y]), [axis], true);
  return [g.op("Mul", [y, g.op("Sub", [dy, dot])])];
};

const logSoftmax: GradientRule = (c) => {
  const { g, node } = c;
  if (g.opset < 13) throw new Error(`LogSoftmax node "${node.name}": opset ${g.opset} semantics have no gradient rule; use opset 13+`);
  const y = c.y(0);
  const axis = normAxis(attrInt(node, "axis", -1), g.rankOf(y));
  const dy = c.dy(0)!;
  // dX = dY - softmax(X) * sum(dY)
  return [g.op("Sub", [dy, g.op("Mul", [g.op("Exp", [y]), reduceSum(g, dy, [axis], true)])])];
};

const layerNormalization: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const rank = g.rankOf(x);
  const axis = normAxis(attrInt(node, "axis", -1), rank);
  const epsilon = attrFloat(node, "epsilon", 1e-5);
  if (c.dy(1) || c.dy(2)) throw new Error(`LayerNormalization node "${node.name}": gradients through Mean/InvStdDev outputs are not supported`);
  const dy = c.dy(0)!;
  const norm = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const lead = Array.from({ length: axis }, (_, i) => i);
  // Statistics are recomputed here rather than read from the optional outputs, which not every EP fills.
  const mean = reduceMean(g, x, norm, true);
  const xc = g.op("Sub", [x, mean]);
  const variance = reduceMean(g, g.op("Mul", [xc, xc]), norm, true);
  const invStd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [variance, g.scalarLike(epsilon, x)])])]);
  const xhat = g.op("Mul", [xc, invStd]);
  const scale = c.x(1);
  let dx: string | undefined;
  if (c.wants(0)) {
    // dX = invStd * (gy - mean(gy) - xhat * mean(gy * xhat)), gy = dY * scale
    const gy = g.op("Mul", [dy, scale]);
    const t = g.op("Sub", [g.op("Sub", [gy, reduceMean(g, gy, norm, true)]), g.op("Mul", [xhat, reduceMean(g, g.op("Mul", [gy, xhat]), norm, true)])]);
    dx = g.op("Mul", [t, invStd]);
  }
  const dScale = c.wants(1) ? reduceSum(g, g.op("Mul", [dy, xhat]), lead, false) : undefined;
  const dBias = node.inputs[2] && c.wants(2) ? reduceSum(g, dy, lead, false) : undefined;
  return [dx, dScale, dBias];
};

/**
 * BatchNormalization in inference form (running statistics as constants, as with freeze_batchnorm):
 * Y = (X - mean) * scale / sqrt(var + eps) + B per channel (axis 1). Training mode is expanded into primitive
 * ops before differentiation (engine/batch-norm.ts), so it never reaches this rule.
 */
const batchNormalization: GradientRule = (c) => {
  const { g, node } = c;
  if (attrInt(node, "training_mode", 0) !== 0) throw new Error(`BatchNormalization node "${node.name}": training_mode=1 has no gradient rule`);
  if (c.wants(3) || c.wants(4)) throw new Error(`BatchNormalization node "${node.name}": its running mean and variance are statistics, not parameters`);
  const x = c.x(0);
  const rank = g.rankOf(x);
  const channel = (v: string): string => perChannel(g, v, rank);
  const others = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const dy = c.dy(0)!;
  const invStd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [c.x(4), g.scalarLike(attrFloat(node, "epsilon", 1e-5), x)])])]);
  const dx = c.wants(0) ? g.op("Mul", [dy, channel(g.op("Mul", [c.x(1), invStd]))]) : undefined;
  const xhat = c.wants(1) ? g.op("Mul", [g.op("Sub", [x, channel(c.x(3))]), channel(invStd)]) : undefined;
  const dScale = xhat ? reduceSum(g, g.op("Mul", [dy, xhat]), others, false) : undefined;
  const dBias = c.wants(2) ? reduceSum(g, dy, others, false) : undefined;
  return [dx, dScale, dBias];
};

export const normalizationRules: Record<string, GradientRule> = {
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  LayerNormalization: layerNormalization,
  BatchNormalization: batchNormalization,
};
