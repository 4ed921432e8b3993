import type { Dim } from "./graph-builder.js";
import type { ElementType } from "./element-type.js";
import type { GraphNode, ShapeGraph, ValueType } from "./graph-types.js";
import { tensorNumbers } from "./tensor-data.js";
import { constantShapes } from "./shapes/constant.js";
import { elementwiseShapes } from "./shapes/elementwise.js";
import { linearAlgebraShapes } from "./shapes/linear-algebra.js";
import { recurrentShapes } from "./shapes/recurrent.js";
import { reductionsShapes } from "./shapes/reductions.js";
import type { ShapeContext, ShapeRule } from "./shapes/shape-rule.js";
import { shapeOpsShapes } from "./shapes/shape-ops.js";
import { windowedShapes } from "./shapes/windowed.js";

/** Shape rules by ONNX op type (default domain). */
export const shapeRules: ReadonlyMap<string, ShapeRule> = new Map(
  Object.entries({ ...constantShapes, ...elementwiseShapes, ...linearAlgebraShapes, ...windowedShapes, ...shapeOpsShapes, ...reductionsShapes, ...recurrentShapes }),
);

/**
 * Infers the element type and shape of a node's outputs from its inputs, for the ops the engine meets in
 * layer graphs, gradient graphs and PyTorch exports. Dims stay symbolic where the model leaves them open
 * (a dynamic batch); 1-D integer "shape" values are tracked element by element so Reshape targets built from
 * Shape→Gather→Concat chains keep their dims. Unknown ops get the first input's type and an unknown shape.
 */
export function inferNode(g: ShapeGraph, node: GraphNode): void {
  const context = contextOf(g, node);
  const rule = shapeRules.get(node.opType);
  if (rule) rule(context);
  else if (context.first) node.outputs.forEach((_, i) => context.set(i, context.first!.type, undefined));
}

function contextOf(g: ShapeGraph, node: GraphNode): ShapeContext {
  const input = (i: number): string | undefined => node.inputs[i] || undefined;
  const t = (i: number): ValueType | undefined => {
    const name = input(i);
    return name ? g.types.get(name) : undefined;
  };
  const first = t(0);
  return {
    g,
    node,
    first,
    dims0: first?.dims,
    t,
    set(i: number, type: ElementType, dims: readonly Dim[] | undefined) {
      const name = node.outputs[i];
      if (name) g.types.set(name, { type, dims });
    },
    sym(i: number) {
      const name = input(i);
      return name ? g.symbolic.get(name) : undefined;
    },
    setSym(i: number, values: readonly Dim[]) {
      if (node.outputs[i]) g.symbolic.set(node.outputs[i]!, values);
    },
    constInts(i: number) {
      const name = input(i);
      const c = name ? g.constantOf(name) : undefined;
      return c ? tensorNumbers(c) : undefined;
    },
  };
}
