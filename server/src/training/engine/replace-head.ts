import { attrInt } from "../onnx/attributes.js";
import type { Graph, GraphNode } from "../onnx/graph.js";
import { parameterInit } from "../layers/parameter-init.js";

// Transfer learning's usual first step: keep a pretrained network, give it a new classifier for new classes.
// The classifier is the last dense layer before the trained output (through a Softmax, LogSoftmax, Sigmoid or
// Identity after it); its weight and bias are replaced by fresh ones, initialised as torch.nn.Linear would.

const PASS_THROUGH = new Set(["Softmax", "LogSoftmax", "Sigmoid", "Identity", "Cast"]);

interface Classifier {
  readonly weight: string;
  readonly bias: string | undefined;
  /** Whether the weight is [out, in] (Gemm transB=1) rather than [in, out]. */
  readonly transposed: boolean;
}

function findClassifier(g: Graph, output: string): Classifier {
  const producers = g.producers();
  let node: GraphNode | undefined = producers.get(output);
  while (node && PASS_THROUGH.has(node.opType)) node = producers.get(node.inputs[0]!);
  const isParam = (name: string | undefined): name is string => Boolean(name && g.initializers.has(name) && g.initializers.get(name)!.type.startsWith("float"));
  if (node?.opType === "Gemm" && isParam(node.inputs[1]) && attrInt(node, "transA", 0) === 0) {
    return { weight: node.inputs[1], bias: isParam(node.inputs[2]) ? node.inputs[2] : undefined, transposed: attrInt(node, "transB", 0) === 1 };
  }
  if (node?.opType === "Add") {
    const [a, b] = node.inputs as [string, string];
    const matmul = [producers.get(a), producers.get(b)].find((p) => p?.opType === "MatMul" && isParam(p.inputs[1]));
    const bias = matmul === producers.get(a) ? b : a;
    if (matmul && isParam(bias)) return { weight: matmul.inputs[1]!, bias, transposed: false };
  }
  if (node?.opType === "MatMul" && isParam(node.inputs[1])) return { weight: node.inputs[1], bias: undefined, transposed: false };
  throw new Error(
    `head: no dense classifier (Gemm, or MatMul with an initializer weight, then an optional bias Add) produces output "${output}"${node ? `; it comes from ${node.opType} node "${node.name}"` : ""}`,
  );
}

/** Replaces the classifier that produces `output` by a fresh one with `classes` outputs; returns a note saying what changed. */
export function replaceHead(g: Graph, output: string, classes: number, seed: number): string {
  const head = findClassifier(g, output);
  const w = g.initializers.get(head.weight)!;
  if (w.dims.length !== 2) throw new Error(`head: the classifier weight "${head.weight}" has rank ${w.dims.length}, not 2`);
  const uses = g.nodes.filter((n) => n.inputs.includes(head.weight)).length;
  if (uses > 1) throw new Error(`head: the classifier weight "${head.weight}" is also used elsewhere (tied); it cannot be replaced alone`);
  const inputs = head.transposed ? w.dims[1]! : w.dims[0]!;
  const before = head.transposed ? w.dims[0]! : w.dims[1]!;
  const init = parameterInit(seed);
  const dims = head.transposed ? [classes, inputs] : [inputs, classes];
  g.initializers.set(head.weight, { type: "float32", dims, data: init.uniform(classes * inputs, inputs) });
  if (head.bias) {
    const b = g.initializers.get(head.bias)!;
    const biasDims = b.dims.length === 2 ? [1, classes] : [classes];
    g.initializers.set(head.bias, { type: "float32", dims: biasDims, data: init.uniform(classes, inputs) });
  }
  return `replaced the classifier ${head.weight}${head.bias ? ` and ${head.bias}` : ""}: ${before} → ${classes} classes, fresh weights (seed ${seed})`;
}
