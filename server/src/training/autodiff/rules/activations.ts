import { attrFloat } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { unbroadcast } from "../grad-ops.js";

// Piecewise activations of mobile and detection nets. At a kink the gradient follows PyTorch's choice, so
// fine-tuning an export matches PyTorch even when an activation lands exactly on a boundary.

/** y = max(0, min(1, alpha * x + beta)): dy * alpha strictly inside (0, 1), as torch's hardsigmoid_backward. */
const hardSigmoid: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const alpha = attrFloat(node, "alpha", 0.2);
  const beta = attrFloat(node, "beta", 0.5);
  const t = g.op("Add", [g.op("Mul", [x, g.scalarLike(alpha, x)]), g.scalarLike(beta, x)]);
  const inside = g.op("And", [g.op("Greater", [t, g.scalarLike(0, x)]), g.op("Less", [t, g.scalarLike(1, x)])]);
  return [g.op("Where", [inside, g.op("Mul", [c.dy(0)!, g.scalarLike(alpha, x)]), g.scalarLike(0, x)])];
};

/** y = x * hardsigmoid(x) with alpha 1/6, beta 1/2: 0 below -3, x/3 + 1/2 up to 3, 1 above (torch's hardswish_backward). */
const hardSwish: GradientRule = (c) => {
  const { g } = c;
  const x = c.x(0);
  const dy = c.dy(0)!;
  const middle = g.op("Add", [g.op("Div", [x, g.scalarLike(3, x)]), g.scalarLike(0.5, x)]);
  const slope = g.op("Where", [
    g.op("Less", [x, g.scalarLike(-3, x)]),
    g.scalarLike(0, x),
    g.op("Where", [g.op("LessOrEqual", [x, g.scalarLike(3, x)]), middle, g.scalarLike(1, x)]),
  ]);
  return [g.op("Mul", [dy, slope])];
};

/** Clip passes the gradient where min ≤ x ≤ max (bounds included, as torch.clamp); the bounds get none. */
const clip: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  let keep: string | undefined;
  const bound = (k: number, op: "GreaterOrEqual" | "LessOrEqual"): void => {
    const b = node.inputs[k];
    if (!b) return;
    const test = g.op(op, [x, b]);
    keep = keep ? g.op("And", [keep, test]) : test;
  };
  bound(1, "GreaterOrEqual");
  bound(2, "LessOrEqual");
  const dy = c.dy(0)!;
  return [keep ? g.op("Where", [keep, dy, g.scalarLike(0, x)]) : dy, undefined, undefined];
};

/** y = x for x > 0, slope * x otherwise; slope broadcasts (per channel in PyTorch exports). */
const prelu: GradientRule = (c) => {
  const { g } = c;
  const x = c.x(0);
  const slope = c.x(1);
  const dy = c.dy(0)!;
  const positive = g.op("Greater", [x, g.scalarLike(0, x)]);
  const dx = c.wants(0) ? g.op("Where", [positive, dy, g.op("Mul", [dy, slope])]) : undefined;
  const dSlope = c.wants(1) ? unbroadcast(g, g.op("Where", [positive, g.scalarLike(0, x), g.op("Mul", [dy, x])]), slope) : undefined;
  return [dx, dSlope];
};

export const activationRules: Record<string, GradientRule> = {
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  Clip: clip,
  PRelu: prelu,
};
