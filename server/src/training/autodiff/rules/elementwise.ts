import { attrFloat } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { onnxTypeCode, unbroadcast } from "../grad-ops.js";

// Gradients of element-wise ops. Binary ops broadcast, so each input's gradient is summed back to its shape.

const identity: GradientRule = (c) => [c.dy(0)];

export const elementwiseRules: Record<string, GradientRule> = {
  Identity: identity,

  Neg: (c) => [c.dy(0) && c.g.op("Neg", [c.dy(0)!])],

  Add: (c) => {
    const dy = c.dy(0)!;
    return [c.wants(0) ? unbroadcast(c.g, dy, c.x(0)) : undefined, c.wants(1) ? unbroadcast(c.g, dy, c.x(1)) : undefined];
  },

  Sub: (c) => {
    const dy = c.dy(0)!;
    return [
      c.wants(0) ? unbroadcast(c.g, dy, c.x(0)) : undefined,
      c.wants(1) ? unbroadcast(c.g, c.g.op("Neg", [dy]), c.x(1)) : undefined,
    ];
  },

  Mul: (c) => {
    const { g } = c;
    const dy = c.dy(0)!;
    return [
      c.wants(0) ? unbroadcast(g, g.op("Mul", [dy, c.x(1)]), c.x(0)) : undefined,
      c.wants(1) ? unbroadcast(g, g.op("Mul", [dy, c.x(0)]), c.x(1)) : undefined,
    ];
  },

  Div: (c) => {
    const { g } = c;
    const dy = c.dy(0)!;
    const da = c.wants(0) || c.wants(1) ? g.op("Div", [dy, c.x(1)]) : undefined;
    // d(a/b)/db = -(a/b)/b, so dB = -(dy/b) * y
    return [
      c.wants(0) ? unbroadcast(g, da!, c.x(0)) : undefined,
      c.wants(1) ? unbroadcast(g, g.op("Neg", [g.op("Mul", [da!, c.y(0)])]), c.x(1)) : undefined,
    ];
  },

  Pow: (c) => {
    const { g } = c;
    const dy = c.dy(0)!;
    const [x, e] = [c.x(0), c.x(1)];
    let dx: string | undefined;
    if (c.wants(0)) {
      // e * x^(e-1); the exponent may be an integer tensor
      const ef = g.typeOf(e).type === g.typeOf(x).type ? e : g.op("Cast", [e], { to: onnxTypeCode(g, x) });
      const pow = g.op("Pow", [x, g.op("Sub", [ef, g.scalarLike(1, x)])]);
      dx = unbroadcast(g, g.op("Mul", [dy, g.op("Mul", [ef, pow])]), x);
    }
    const de = c.wants(1) ? unbroadcast(g, g.op("Mul", [dy, g.op("Mul", [c.y(0), g.op("Log", [x])])]), e) : undefined;
    return [dx, de];
  },

  Sqrt: (c) => {
    const { g } = c;
    return [g.op("Div", [g.op("Mul", [c.dy(0)!, g.scalarLike(0.5, c.y(0))]), c.y(0)])];
  },

  Exp: (c) => [c.g.op("Mul", [c.dy(0)!, c.y(0)])],

  Log: (c) => [c.g.op("Div", [c.dy(0)!, c.x(0)])],

  Reciprocal: (c) => {
    const { g } = c;
    return [g.op("Neg", [g.op("Mul", [c.dy(0)!, g.op("Mul", [c.y(0), c.y(0)])])])];
  },

  Tanh: (c) => {
    const { g } = c;
    const y = c.y(0);
    return [g.op("Mul", [c.dy(0)!, g.op("Sub", [g.scalarLike(1, y), g.op("Mul", [y, y])])])];
  },

  Sigmoid: (c) => {
    const { g } = c;
    const y = c.y(0);
    return [g.op("Mul", [c.dy(0)!, g.op("Mul", [y, g.op("Sub", [g.scalarLike(1, y), y])])])];
  },

  Relu: (c) => {
    const { g } = c;
    const y = c.y(0);
    return [g.op("Where", [g.op("Greater", [y, g.scalarLike(0, y)]), c.dy(0)!, g.scalarLike(0, y)])];
  },

  LeakyRelu: (c) => {
    const { g } = c;
    const x = c.x(0);
    const alpha = attrFloat(c.node, "alpha", 0.01);
    const dy = c.dy(0)!;
    return [g.op("Where", [g.op("Greater", [x, g.scalarLike(0, x)]), dy, g.op("Mul", [dy, g.scalarLike(alpha, x)])])];
  },

  Abs: (c) => [c.g.op("Mul", [c.dy(0)!, c.g.op("Sign", [c.x(0)])])],

  Erf: (c) => {
    const { g } = c;
    const x = c.x(0);
    // d erf(x)/dx = 2/sqrt(pi) * exp(-x^2)
    const e = g.op("Exp", [g.op("Neg", [g.op("Mul", [x, x])])]);
    return [g.op("Mul", [c.dy(0)!, g.op("Mul", [e, g.scalarLike(2 / Math.sqrt(Math.PI), x)])])];
  },

  Cast: (c) => {
    const { g } = c;
    const from = g.typeOf(c.x(0)).type;
    if (!from.startsWith("float")) return [undefined];
    return [g.op("Cast", [c.dy(0)!], { to: onnxTypeCode(g, c.x(0)) })];
  },

  Dropout: (c) => {
    const { g } = c;
    const dy = c.dy(0)!;
    const mask = c.node.outputs[1];
    const training = c.node.inputs[2] ? g.constantOf(c.node.inputs[2]) : undefined;
    const isTraining = training ? Number(training.data[0]) !== 0 : c.node.inputs[2] !== undefined && c.node.inputs[2] !== "";
    if (!isTraining) return [dy];
    if (!mask) throw new Error(`Dropout node "${c.node.name}" in training mode needs its mask output for the gradient`);
    const ratioConst = c.node.inputs[1] ? g.constantOf(c.node.inputs[1]) : undefined;
    const ratio = ratioConst ? Number(ratioConst.data[0]) : 0.5;
    const x = c.x(0);
    const scale = g.scalarLike(1 / (1 - ratio), x);
    return [g.op("Mul", [g.op("Mul", [dy, g.op("Cast", [mask], { to: onnxTypeCode(g, x) })]), scale])];
  },

  Where: (c) => {
    const { g } = c;
    const dy = c.dy(0)!;
    const cond = c.x(0);
    const zero = g.scalarLike(0, dy);
    return [
      undefined,
      c.wants(1) ? unbroadcast(g, g.op("Where", [cond, dy, zero]), c.x(1)) : undefined,
      c.wants(2) ? unbroadcast(g, g.op("Where", [cond, zero, dy]), c.x(2)) : undefined,
    ];
  },
};
