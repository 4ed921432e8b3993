import { attrFloat, attrInt, attrInts, attrString } from "./attributes.js";
import { attribute } from "./graph-builder.js";
import type { Graph, GraphNode } from "./graph.js";

// Brings a model exported at opset 9–12 to opset 13, the form the engine's shape and gradient rules read:
// attributes that later opsets turned into inputs become constant inputs, and Softmax's pre-13 meaning
// (softmax over everything after `axis`, default 1) becomes explicit. The model computes the same values.

export const OLDEST_OPSET = 9;
const TARGET = 13;

type Upgrade = (g: Graph, node: GraphNode) => boolean;

/** Re-emits `node` with `inputs`, without the attributes named in `drop`, with `extra` ones set. */
function reemit(g: Graph, node: GraphNode, inputs: readonly string[], drop: readonly string[], extra: Record<string, number> = {}): true {
  const kept = node.attributes.filter((a) => !drop.includes(a.name) && !(a.name in extra));
  const attributes = [...kept, ...Object.entries(extra).map(([k, v]) => attribute(k, v))];
  g.insertNode({ opType: node.opType, domain: node.domain, name: node.name, inputs: [...inputs], outputs: node.outputs, attributes });
  return true;
}

const optionalInts = (g: Graph, values: number[] | undefined): string => (values ? g.ints(values) : "");

const upgrades: Record<string, Upgrade> = {
  // Opset 11: min and max moved from attributes to inputs.
  Clip: (g, node) => {
    if (node.inputs.length > 1 || g.opset >= 11) return false;
    const x = node.inputs[0]!;
    const min = g.constant([attrFloat(node, "min", -3.4028234663852886e38)], "float32", []);
    const max = g.constant([attrFloat(node, "max", 3.4028234663852886e38)], "float32", []);
    return reemit(g, node, [x, min, max], ["min", "max"]);
  },
  // Opset 10: starts, ends and axes moved to inputs.
  Slice: (g, node) => {
    if (node.inputs.length > 1) return false;
    const inputs = [node.inputs[0]!, g.ints(attrInts(node, "starts") ?? []), g.ints(attrInts(node, "ends") ?? [])];
    const axes = attrInts(node, "axes");
    if (axes) inputs.push(g.ints(axes));
    return reemit(g, node, inputs, ["starts", "ends", "axes"]);
  },
  // Opset 13: axes moved to an input.
  Unsqueeze: (g, node) => (node.inputs.length > 1 ? false : reemit(g, node, [node.inputs[0]!, g.ints(attrInts(node, "axes") ?? [])], ["axes"])),
  Squeeze: (g, node) => (node.inputs.length > 1 ? false : reemit(g, node, [node.inputs[0]!, optionalInts(g, attrInts(node, "axes"))].filter(Boolean), ["axes"])),
  ReduceSum: (g, node) => (node.inputs.length > 1 ? false : reemit(g, node, [node.inputs[0]!, optionalInts(g, attrInts(node, "axes"))].filter(Boolean), ["axes"])),
  Split: (g, node) => {
    const split = attrInts(node, "split");
    return node.inputs.length > 1 || !split ? false : reemit(g, node, [node.inputs[0]!, g.ints(split)], ["split"]);
  },
  // Opset 12: ratio moved to an input; before 12 an exported Dropout is inference-only.
  Dropout: (g, node) => (node.inputs.length > 1 ? false : reemit(g, node, [node.inputs[0]!, g.constant([attrFloat(node, "ratio", 0.5)], "float32", [])], ["ratio", "is_test"])),
  // Opset 11: pads and the constant value moved to inputs.
  Pad: (g, node) => {
    if (node.inputs.length > 1) return false;
    const inputs = [node.inputs[0]!, g.ints(attrInts(node, "pads") ?? [])];
    if (attrString(node, "mode", "constant") === "constant") inputs.push(g.constant([attrFloat(node, "value", 0)], g.typeOf(node.inputs[0]!).type, []));
    return reemit(g, node, inputs, ["pads", "value"]);
  },
  // Upsample (deprecated at 10) and opset-10 Resize scale with the "asymmetric" coordinate mapping.
  Upsample: (g, node) => resizeOf(g, node),
  Resize: (g, node) => (node.inputs.length === 2 ? resizeOf(g, node) : false),
  Softmax: (g, node) => softmaxOf(g, node),
  LogSoftmax: (g, node) => softmaxOf(g, node),
  Hardmax: (g, node) => softmaxOf(g, node),
};

function resizeOf(g: Graph, node: GraphNode): boolean {
  const mode = attrString(node, "mode", "nearest");
  g.add("Resize", [node.inputs[0]!, "", node.inputs[1]!], {
    outputs: node.outputs,
    name: node.name,
    attrs: { mode, coordinate_transformation_mode: "asymmetric", ...(mode === "nearest" ? { nearest_mode: "floor" } : {}) },
  });
  return true;
}

/** Before 13, Softmax flattened its input to 2-D at `axis` (default 1) and normalized each row. */
function softmaxOf(g: Graph, node: GraphNode): boolean {
  const x = node.inputs[0]!;
  const rank = g.dimsOf(x)?.length;
  let axis = attrInt(node, "axis", 1);
  if (rank === undefined) throw new Error(`${node.opType} node "${node.name}": opset ${g.opset} meaning needs the input's rank, which is unknown`);
  if (axis < 0) axis += rank;
  if (axis === rank - 1) return reemit(g, node, [x], ["axis"], { axis });
  const flat = g.op("Flatten", [x], { axis });
  const y = g.op(node.opType, [flat], { axis: 1 });
  g.add("Reshape", [y, g.op("Shape", [x])], { outputs: node.outputs, name: node.name });
  return true;
}

/** Upgrades `g` in place to opset 13 when it is older; returns the opset it had. Older than 9 is an error. */
export function upgradeOpset(g: Graph): number {
  const from = g.opset;
  if (from >= TARGET) return from;
  if (from < OLDEST_OPSET) throw new Error(`the model is at opset ${from}; training reads opset ${OLDEST_OPSET} or later (re-export it with a newer opset)`);
  g.rewrite((node) => {
    const upgrade = node.domain === "" ? upgrades[node.opType] : undefined;
    return upgrade ? upgrade(g, node) : false;
  });
  g.opset = TARGET;
  return from;
}
