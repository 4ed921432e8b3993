import type { ModelProto } from "onnx-buf";
import { Graph } from "../onnx/graph.js";
import { untieSharedParameters } from "../onnx/shared-parameters.js";
import { batchNormStats, separateBatchNormStats } from "./batch-norm.js";

export interface PrepareOptions {
  readonly untieSharedParameters?: boolean;
}

export interface PreparedForward {
  /** The model training starts from; the published version is this graph with the trained weights. */
  readonly forward: ModelProto;
  /** What changed, in words for the job's events. */
  readonly notes: readonly string[];
}

const floatParams = (g: Graph): string[] => {
  const statistics = new Set(batchNormStats(g));
  return [...g.initializers].filter(([n, t]) => (t.type === "float32" || t.type === "float64") && t.dims.length >= 1 && !statistics.has(n)).map(([n]) => n);
};

/** Brings a model into the form the engine trains, saying what it changed; an unchanged model comes back as is. */
export function prepareForward(source: ModelProto, options: PrepareOptions): PreparedForward {
  const notes: string[] = [];
  const g = Graph.fromModel(source);
  let changed = false;
  const separated = separateBatchNormStats(g);
  if (separated > 0) {
    changed = true;
    notes.push(`gave ${separated} BatchNormalization running statistics tensors of their own (the export shared them with equal parameters)`);
  }
  if (options.untieSharedParameters) {
    const untied = untieSharedParameters(g, floatParams(g));
    if (untied.length > 0) {
      changed = true;
      notes.push(`untied ${untied.length} shared parameters: ${untied.join(", ")} each start from a copy of the tensor they read`);
    }
  }
  return { forward: changed ? g.toModel() : source, notes };
}
