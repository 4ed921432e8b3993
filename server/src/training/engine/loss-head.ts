import type { Graph } from "../onnx/graph.js";
import { reduceMean } from "../autodiff/grad-ops.js";
import { attrInt } from "../onnx/attributes.js";
import { shapeRules } from "../onnx/shape-inference.js";

/** The task a model is trained for: which forward output is scored, and how. */
export type LossSpec =
  | { readonly kind: "cross-entropy"; readonly output: string }
  | { readonly kind: "mse"; readonly output: string };

export interface LossHead {
  readonly loss: string;
  /** How the loss reads the output, when not as given (e.g. the logits before a Softmax output). */
  readonly note?: string;
  /** Classification: number of rows whose arg-max equals the label (float scalar). */
  readonly correct: string | undefined;
  readonly labels: string;
}

/**
 * The logits behind a classification output: a model that ends in Softmax (PaddleOCR's classifiers) is scored
 * on the values before it, since cross-entropy applied to probabilities would softmax them a second time.
 * (A LogSoftmax output needs nothing: softmax of log-probabilities is the probabilities.)
 */
function logitsOf(g: Graph, out: string): { logits: string; note?: string } {
  const node = g.producers().get(out);
  if (node?.opType !== "Softmax" || node.domain !== "") return { logits: out };
  const axis = attrInt(node, "axis", -1);
  if (axis !== -1 && axis !== 1) return { logits: out };
  return { logits: node.inputs[0]!, note: `output "${out}" is a Softmax: the cross-entropy loss reads the logits before it ("${node.inputs[0]}")` };
}

/** The first node on the way to `value` whose output shape is unknown although its inputs' are known. */
function whereShapesStop(g: Graph, value: string): string {
  const producers = g.producers();
  let node = producers.get(value);
  for (let hops = 0; node && hops < 100_000; hops++) {
    const unknown = node.inputs.find((i) => i && !g.dimsOf(i) && producers.has(i));
    if (!unknown) break;
    node = producers.get(unknown);
  }
  if (!node) return "and it is a graph input without a shape";
  const why = shapeRules.has(node.opType) && node.domain === "" ? "its inputs do not determine it" : "the engine has no shape rule for this op";
  return `and shape inference stops at ${node.domain ? `${node.domain}.` : ""}${node.opType} node "${node.name}" (${why})`;
}

/** Adds the labels input, the scalar loss and the metrics to a forward graph. */
export function appendLossHead(g: Graph, spec: LossSpec, labelsName = "labels"): LossHead {
  const out = spec.output;
  const dims = g.dimsOf(out);
  if (!dims) throw new Error(`loss: the rank of output "${out}" must be known, ${whereShapesStop(g, out)}`);
  if (spec.kind === "cross-entropy") {
    if (dims.length !== 2) throw new Error(`cross-entropy loss needs logits of shape [batch, classes]; "${out}" has rank ${dims.length}`);
    const { logits, note } = logitsOf(g, out);
    const labels = g.addInput(labelsName, "int64", [dims[0]!]);
    const loss = g.op("SoftmaxCrossEntropyLoss", [logits, labels], { reduction: "mean" });
    const predicted = g.op("ArgMax", [logits], { axis: 1, keepdims: 0 });
    const hits = g.op("Cast", [g.op("Equal", [predicted, labels])], { to: 1 });
    const correct = g.op("ReduceSum", [hits], { keepdims: 0 });
    return { loss, correct, labels, note };
  }
  const labels = g.addInput(labelsName, g.typeOf(out).type, dims);
  const diff = g.op("Sub", [out, labels]);
  const loss = reduceMean(g, g.op("Mul", [diff, diff]), dims.map((_, i) => i), false);
  return { loss, correct: undefined, labels };
}
