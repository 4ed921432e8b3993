import { attrInt, attrString, hasAttr } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { onnxTypeCode, unsqueeze } from "../grad-ops.js";

/**
 * SoftmaxCrossEntropyLoss over scores [N, C] (or [N, C, d1…]) with integer labels: dScores = (softmax - onehot)
 * scaled by the incoming gradient, divided by the count of counted labels for the mean. ignore_index rows get 0.
 */
const softmaxCrossEntropy: GradientRule = (c) => {
  const { g, node } = c;
  if (node.inputs[2]) throw new Error(`SoftmaxCrossEntropyLoss node "${node.name}": class weights have no gradient rule`);
  if (c.dy(1)) throw new Error(`SoftmaxCrossEntropyLoss node "${node.name}": gradients through log_prob are not supported`);
  const scores = c.x(0);
  const labels = c.x(1);
  const rank = g.rankOf(scores);
  const reduction = attrString(node, "reduction", "mean");
  const dLoss = c.dy(0)!;
  const floatTo = onnxTypeCode(g, scores);
  const probs = g.op("Softmax", [scores], { axis: 1 });
  let target = g.typeOf(labels).type === "int64" ? labels : g.op("Cast", [labels], { to: 7 });
  let mask: string | undefined;
  if (hasAttr(node, "ignore_index")) {
    const ignore = g.constant([attrInt(node, "ignore_index", -100)], "int64", []);
    const keep = g.op("Not", [g.op("Equal", [target, ignore])]);
    target = g.op("Where", [keep, target, g.constant([0], "int64", [])]);
    mask = g.op("Cast", [keep], { to: floatTo }); // [N, d…]
  }
  const depth = g.op("Gather", [g.op("Shape", [scores]), g.ints([1])]);
  const onOff = g.constant([0, 1], g.typeOf(scores).type, [2]);
  const oneHot = g.op("OneHot", [target, depth, onOff], { axis: 1 });
  let grad = g.op("Sub", [probs, oneHot]); // [N, C, d…]
  if (mask) grad = g.op("Mul", [grad, unsqueeze(g, mask, [1])]);
  if (reduction === "none") {
    grad = g.op("Mul", [grad, unsqueeze(g, dLoss, [1])]);
  } else {
    let scaled = dLoss;
    if (reduction === "mean") {
      const count = mask
        ? g.op("ReduceSum", [mask], { keepdims: 0 })
        : g.op("Cast", [g.op("Size", [labels])], { to: floatTo });
      scaled = g.op("Div", [dLoss, count]);
    }
    grad = g.op("Mul", [grad, scaled]);
  }
  void rank;
  return [grad, undefined, undefined];
};

export const lossRules: Record<string, GradientRule> = { SoftmaxCrossEntropyLoss: softmaxCrossEntropy };
