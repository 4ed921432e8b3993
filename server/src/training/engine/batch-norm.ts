import { attrFloat } from "../onnx/attributes.js";
import type { Graph, GraphNode } from "../onnx/graph.js";
import { countOf, perChannel, reduceMean } from "../autodiff/grad-ops.js";

// BatchNormalization's running mean and variance are buffers: they change while a model trains, but by
// averaging batch statistics, never by gradient descent. PyTorch exports them beside the scale and bias, and
// merges equal tensors, so a fresh model's running means read its zero biases through Identity.

const isBatchNorm = (node: GraphNode): boolean => node.opType === "BatchNormalization" && node.domain === "";

/** The running-statistics inputs (mean, variance) of every BatchNormalization. */
export function batchNormStats(g: Graph): string[] {
  return [...new Set(g.nodes.filter(isBatchNorm).flatMap((n) => [n.inputs[3]!, n.inputs[4]!]))];
}

/**
 * Gives every BatchNormalization's mean and variance an initializer of its own, copied from the value it
 * reads (through Identity or shared with a parameter), so training the parameter never moves the statistic
 * and updating the statistic never moves the parameter. Returns how many were separated.
 */
export function separateBatchNormStats(g: Graph): number {
  const producers = g.producers();
  const uses = new Map<string, number>();
  for (const node of g.nodes) for (const i of node.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const sourceOf = (name: string): string | undefined => {
    let cur = name;
    for (let hops = 0; hops < 64; hops++) {
      if (g.initializers.has(cur)) return cur;
      const p = producers.get(cur);
      if (!p || p.opType !== "Identity") return undefined;
      cur = p.inputs[0]!;
    }
    return undefined;
  };
  let separated = 0;
  for (const node of g.nodes.filter(isBatchNorm)) {
    for (const k of [3, 4]) {
      const name = node.inputs[k]!;
      const source = sourceOf(name);
      if (!source || (source === name && uses.get(name) === 1)) continue;
      const value = g.initializers.get(source)!;
      const copy = { type: value.type, dims: [...value.dims], data: value.data.slice() };
      if (source === name) {
        // One initializer read directly by several nodes: this node gets a renamed copy.
        node.inputs[k] = g.addInitializer(g.fresh(`${node.outputs[0]}.${k === 3 ? "running_mean" : "running_var"}`), copy);
      } else {
        const identity = producers.get(name);
        if (identity && uses.get(name) === 1) g.replaceWithConstant(identity, copy);
        else node.inputs[k] = g.addInitializer(g.fresh(`${name}.own`), copy);
      }
      separated++;
    }
  }
  return separated;
}

/**
 * Replaces every BatchNormalization by its training-mode computation: normalized by the batch's own mean and
 * (biased) variance, so gradients flow through the statistics as in PyTorch's train mode. Returns each running
 * statistic's next value, as PyTorch updates it: momentum-weighted, the variance unbiased (n / (n - 1)).
 */
export function trainingModeBatchNorm(g: Graph): Map<string, string> {
  const next = new Map<string, string>();
  g.rewrite((node) => {
    if (!isBatchNorm(node)) return false;
    if (node.outputs.length > 1 && node.outputs.slice(1).some(Boolean)) {
      throw new Error(`BatchNormalization node "${node.name}": models exported in training mode (with running-statistics outputs) are not supported; export in eval mode`);
    }
    const [x, scale, bias, mean, variance] = node.inputs as [string, string, string, string, string];
    const rank = g.rankOf(x);
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const epsilon = attrFloat(node, "epsilon", 1e-5);
    const momentum = attrFloat(node, "momentum", 0.9);
    const batchMean = reduceMean(g, x, axes, true);
    const centered = g.op("Sub", [x, batchMean]);
    const batchVar = reduceMean(g, g.op("Mul", [centered, centered]), axes, true);
    const invStd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [batchVar, g.scalarLike(epsilon, x)])])]);
    const normalized = g.op("Mul", [centered, invStd]);
    const scaled = g.op("Mul", [normalized, perChannel(g, scale, rank)]);
    g.add("Add", [scaled, perChannel(g, bias, rank)], { outputs: [node.outputs[0]!], name: node.name });
    // Running statistics, outside the loss's path (no gradient flows into them).
    const flat = g.ints([-1]);
    const channels = g.dimsOf(mean)?.[0];
    if (typeof channels !== "number") throw new Error(`BatchNormalization node "${node.name}": the channel count must be static`);
    const n = g.op("Div", [countOf(g, x, x), g.scalarLike(channels, x)]);
    const unbiased = g.op("Mul", [g.op("Reshape", [batchVar, flat]), g.op("Div", [n, g.op("Sub", [n, g.scalarLike(1, x)])])]);
    const blend = (running: string, current: string): string =>
      g.op("Add", [g.op("Mul", [running, g.scalarLike(momentum, x)]), g.op("Mul", [current, g.scalarLike(1 - momentum, x)])]);
    next.set(mean, blend(mean, g.op("Reshape", [batchMean, flat])));
    next.set(variance, blend(variance, unbiased));
    return true;
  });
  return next;
}
