import type { Graph } from "../onnx/graph.js";
import { gradientRules, nonDifferentiable } from "./gradient-registry.js";
import type { GradientContext } from "./gradient-rule.js";

export interface Backward {
  /** The gradient value of each parameter that reaches the loss. */
  readonly gradients: ReadonlyMap<string, string>;
  /** Parameters the loss does not depend on (no gradient flows to them). */
  readonly unreached: readonly string[];
}

const isFloat = (g: Graph, name: string): boolean => {
  const t = g.types.get(name)?.type;
  return t === "float32" || t === "float64" || t === "float16";
};

/**
 * Appends to `g` the nodes that compute d(loss)/d(param) for every param, by reverse accumulation over the
 * nodes that lie on a path from a parameter to the loss. Gradients meeting at one value are summed; integer
 * and boolean values carry none. A node on such a path without a rule is an error naming its op and node.
 */
export function appendBackward(g: Graph, loss: string, params: readonly string[]): Backward {
  const forwardNodes = [...g.nodes];
  // Values that depend on a parameter through float math.
  const fromParams = new Set(params);
  for (const node of forwardNodes) {
    if (nonDifferentiable.has(node.opType)) continue;
    if (node.inputs.some((i) => fromParams.has(i))) {
      for (const out of node.outputs) if (out && isFloat(g, out)) fromParams.add(out);
    }
  }
  // Values the loss depends on.
  const toLoss = new Set([loss]);
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i]!;
    if (node.outputs.some((o) => toLoss.has(o))) for (const input of node.inputs) if (input) toLoss.add(input);
  }
  const active = (name: string): boolean => fromParams.has(name) && toLoss.has(name) && isFloat(g, name);
  if (!active(loss)) throw new Error(`the loss "${loss}" does not depend on any trained parameter`);

  const pending = new Map<string, string[]>();
  const push = (name: string, grad: string): void => {
    const list = pending.get(name);
    if (list) list.push(grad);
    else pending.set(name, [grad]);
  };
  const total = (name: string): string | undefined => {
    const list = pending.get(name);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = g.op("Sum", list);
    pending.set(name, [sum]);
    return sum;
  };

  const lossDims = g.dimsOf(loss);
  push(
    loss,
    lossDims && lossDims.length === 0
      ? g.scalarLike(1, loss)
      : g.op("Expand", [g.scalarLike(1, loss), g.op("Shape", [loss])]),
  );

  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i]!;
    if (!node.inputs.some((x) => x && active(x))) continue;
    const outGrads = node.outputs.map((o) => (o && active(o) ? total(o) : undefined));
    if (outGrads.every((d) => d === undefined)) continue;
    const rule = gradientRules.get(node.opType);
    if (!rule || node.domain !== "") {
      throw new Error(
        `no gradient rule for op ${node.domain ? `${node.domain}.` : ""}${node.opType} (node "${node.name}"), which lies between the trained parameters and the loss; freeze the parameters before it or replace the op`,
      );
    }
    const ctx: GradientContext = {
      g,
      node,
      x: (k) => node.inputs[k]!,
      y: (k) => node.outputs[k]!,
      dy: (k) => outGrads[k],
      wants: (k) => Boolean(node.inputs[k]) && active(node.inputs[k]!),
    };
    const grads = rule(ctx);
    grads.forEach((grad, k) => {
      const input = node.inputs[k];
      if (grad && input && active(input)) push(input, grad);
    });
  }

  const gradients = new Map<string, string>();
  const unreached: string[] = [];
  for (const p of params) {
    const grad = active(p) ? total(p) : undefined;
    if (grad) gradients.set(p, grad);
    else unreached.push(p);
  }
  return { gradients, unreached };
}

