import { attrInt, attrInts } from "../../onnx/attributes.js";
import { tensorNumbers } from "../../onnx/tensor-data.js";
import type { GradientContext, GradientRule } from "../gradient-rule.js";
import { countOf, expandLike, normAxis, unsqueeze } from "../grad-ops.js";

function reducedAxes(c: GradientContext, axesAsInput: boolean): number[] {
  const { g, node } = c;
  const rank = g.rankOf(c.x(0));
  let axes: number[] | undefined;
  if (axesAsInput) {
    if (node.inputs[1]) {
      const constant = g.constantOf(node.inputs[1]);
      if (!constant) throw new Error(`${node.opType} node "${node.name}": axes must be constant for the gradient`);
      axes = tensorNumbers(constant);
    }
  } else {
    axes = attrInts(node, "axes");
  }
  if (!axes || axes.length === 0) {
    if (attrInt(node, "noop_with_empty_axes", 0)) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
}

/** dX = dY broadcast back over the reduced axes. */
function spread(c: GradientContext, axes: readonly number[]): string {
  const { g } = c;
  let dy = c.dy(0)!;
  if (attrInt(c.node, "keepdims", 1) === 0 && axes.length > 0) dy = unsqueeze(g, dy, axes);
  return expandLike(g, dy, c.x(0));
}

const reduceSum: GradientRule = (c) => [spread(c, reducedAxes(c, c.g.opset >= 13)), undefined];

const reduceMean: GradientRule = (c) => {
  const { g } = c;
  const axes = reducedAxes(c, g.opset >= 18);
  const x = c.x(0);
  const count = g.op("Div", [countOf(g, x, x), countOf(g, c.y(0), x)]);
  return [g.op("Div", [spread(c, axes), count]), undefined];
};

export const reductionRules: Record<string, GradientRule> = { ReduceSum: reduceSum, ReduceMean: reduceMean };
