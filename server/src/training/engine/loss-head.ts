import type { Graph } from "../onnx/graph.js";
import { reduceMean } from "../autodiff/grad-ops.js";

/** The task a model is trained for: which forward output is scored, and how. */
export type LossSpec =
  | { readonly kind: "cross-entropy"; readonly output: string }
  | { readonly kind: "mse"; readonly output: string };

export interface LossHead {
  readonly loss: string;
  /** Classification: number of rows whose arg-max equals the label (float scalar). */
  readonly correct: string | undefined;
  readonly labels: string;
}

/** Adds the labels input, the scalar loss and the metrics to a forward graph. */
export function appendLossHead(g: Graph, spec: LossSpec, labelsName = "labels"): LossHead {
  const out = spec.output;
  const dims = g.dimsOf(out);
  if (!dims) throw new Error(`loss: the rank of output "${out}" must be known`);
  if (spec.kind === "cross-entropy") {
    if (dims.length !== 2) throw new Error(`cross-entropy loss needs logits of shape [batch, classes]; "${out}" has rank ${dims.length}`);
    const labels = g.addInput(labelsName, "int64", [dims[0]!]);
    const loss = g.op("SoftmaxCrossEntropyLoss", [out, labels], { reduction: "mean" });
    const predicted = g.op("ArgMax", [out], { axis: 1, keepdims: 0 });
    const hits = g.op("Cast", [g.op("Equal", [predicted, labels])], { to: 1 });
    const correct = g.op("ReduceSum", [hits], { keepdims: 0 });
    return { loss, correct, labels };
  }
  const labels = g.addInput(labelsName, g.typeOf(out).type, dims);
  const diff = g.op("Sub", [out, labels]);
  const loss = reduceMean(g, g.op("Mul", [diff, diff]), dims.map((_, i) => i), false);
  return { loss, correct: undefined, labels };
}
