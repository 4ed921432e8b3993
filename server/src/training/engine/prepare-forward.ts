import type { ModelProto } from "onnx-buf";
import { foldConstants } from "../onnx/constant-folding.js";
import { Graph } from "../onnx/graph.js";
import { upgradeOpset } from "../onnx/opset-upgrade.js";
import { untieSharedParameters } from "../onnx/shared-parameters.js";
import { batchNormStats, separateBatchNormStats } from "./batch-norm.js";
import { replaceHead } from "./replace-head.js";

export interface PrepareOptions {
  readonly untieSharedParameters?: boolean;
  /** Sizes for the dims the model leaves open, by input name, without the batch dim. */
  readonly inputDims?: Readonly<Record<string, readonly number[]>>;
  /** A new classifier of `classes` outputs for `output`, initialised from `seed`. */
  readonly head?: { readonly classes: number; readonly output: string; readonly seed: number };
}

export interface PreparedForward {
  /** The model training starts from; the published version is this graph with the trained weights. */
  readonly forward: ModelProto;
  /** What changed, in words for the job's events. */
  readonly notes: readonly string[];
}

/**
 * The initializers that may be trained: float tensors of rank ≥ 1 (rank-0 ones are constants such as
 * exponents), BatchNormalization's running statistics aside (buffers, never parameters).
 */
export function parameterCandidates(g: Graph): string[] {
  const statistics = new Set(batchNormStats(g));
  return [...g.initializers].filter(([n, t]) => (t.type === "float32" || t.type === "float64") && t.dims.length >= 1 && !statistics.has(n)).map(([n]) => n);
}

/** Float tensors of rank ≥ 1 held by Constant nodes (older exporters store every weight so) become initializers. */
function constantWeights(g: Graph): number {
  let moved = 0;
  for (const node of [...g.nodes]) {
    if (node.opType !== "Constant" || node.domain !== "" || !node.outputs[0]) continue;
    const value = g.constantOf(node.outputs[0]);
    if (!value || !(value.type === "float32" || value.type === "float64") || value.dims.length === 0) continue;
    g.replaceWithConstant(node, value);
    moved++;
  }
  return moved;
}

/** The graph re-read from its model, so every value's type and shape is inferred afresh after an edit. */
const reread = (g: Graph): Graph => Graph.fromModel(g.toModel());

/** Brings a model into the form the engine trains, saying what it changed; an unchanged model comes back as is. */
export function prepareForward(source: ModelProto, options: PrepareOptions): PreparedForward {
  const notes: string[] = [];
  let g = Graph.fromModel(source);
  let changed = false;
  const note = (text: string): void => {
    changed = true;
    notes.push(text);
  };
  const moved = constantWeights(g);
  if (moved > 0) note(`made ${moved} weights stored as Constant nodes into parameters`);
  const opset = upgradeOpset(g);
  if (opset !== g.opset) note(`upgraded the graph from opset ${opset} to ${g.opset} (the published version is at ${g.opset})`);
  if (changed) g = reread(g);
  if (options.inputDims && Object.keys(options.inputDims).length > 0) {
    note(pinInputDims(g, options.inputDims));
    g = reread(g);
  }
  const batch = symbolicBatch(g);
  if (batch) {
    g = batch.graph;
    note(batch.note);
  }
  const separated = separateBatchNormStats(g);
  if (separated > 0) note(`gave ${separated} BatchNormalization running statistics tensors of their own (the export shared them with equal parameters)`);
  if (options.untieSharedParameters) {
    const untied = untieSharedParameters(g, parameterCandidates(g));
    if (untied.length > 0) note(`untied ${untied.length} shared parameters: ${untied.join(", ")} each start from a copy of the tensor they read`);
  }
  if (options.head) {
    note(replaceHead(g, options.head.output, options.head.classes, options.head.seed));
    g = reread(g);
    const dims = g.outputs.find((o) => o.name === options.head!.output)?.dims;
    if (dims?.[dims.length - 1] !== options.head.classes) {
      throw new Error(`head: after the new classifier, output "${options.head.output}" has shape [${dims?.join(", ") ?? "?"}]; the graph after the classifier fixes the class count`);
    }
  }
  return { forward: changed ? g.toModel() : source, notes };
}

/**
 * A model exported with a fixed batch (openWakeWord's [1, 25, 96]) trains and serves batches of any size:
 * its inputs' first dim becomes "batch", and Reshape targets that spell the batch as a literal 1 copy it
 * instead (0). Returns a note, or undefined when the batch was not fixed. Throws, naming the output, when an
 * output still has a fixed first dim: the graph hard-codes the batch somewhere else.
 */
function symbolicBatch(g: Graph): { graph: Graph; note: string } | undefined {
  const fixed = g.inputs.filter((i) => typeof i.dims?.[0] === "number");
  if (fixed.length === 0 || fixed.length !== g.inputs.length) return undefined;
  const size = fixed[0]!.dims![0] as number;
  g.inputs.splice(0, g.inputs.length, ...g.inputs.map((i) => ({ ...i, dims: ["batch", ...i.dims!.slice(1)] })));
  let probe = reread(g);
  // Static exports build Reshape targets from constants: fold them so a literal batch shows (values stay).
  foldConstants(probe, { variables: [...probe.initializers].filter(([, t]) => t.type.startsWith("float")).map(([n]) => n) });
  const rewritten: string[] = [];
  // Each pass frees the values after the Reshapes it rewrote; the next finds the Reshapes those feed.
  for (let pass = 0; pass < 32; pass++) {
    const before = rewritten.length;
    for (const node of probe.nodes) {
      if (node.opType !== "Reshape" || probe.dimsOf(node.inputs[0]!)?.[0] !== "batch") continue;
      const target = probe.initializers.get(node.inputs[1]!);
      if (!target || target.dims.length !== 1 || Number(target.data[0]) !== size) continue;
      const data = BigInt64Array.from(target.data as BigInt64Array);
      data[0] = 0n;
      node.inputs[1] = probe.addInitializer(probe.fresh(`${node.inputs[1]}.batch`), { type: "int64", dims: [...target.dims], data });
      rewritten.push(node.name);
    }
    if (rewritten.length === before) break;
    probe = reread(probe);
  }
  const stuck = probe.outputs.find((o) => o.dims?.[0] !== "batch");
  if (stuck) throw new Error(`the model fixes its batch at ${size} and output "${stuck.name}" keeps a fixed first dim; export it with a dynamic batch axis`);
  const how = rewritten.length ? `; Reshape ${rewritten.join(", ")} now copy the batch dim` : "";
  return { graph: probe, note: `the model's batch dim was fixed at ${size}: it takes any batch now ("batch"), for training and in the published version${how}` };
}

/** Gives the open dims of the named inputs the sizes asked for; a size that contradicts a fixed dim is an error. */
function pinInputDims(g: Graph, sizes: Readonly<Record<string, readonly number[]>>): string {
  const pinned: string[] = [];
  for (const [name, dims] of Object.entries(sizes)) {
    const index = g.inputs.findIndex((i) => i.name === name);
    if (index < 0) throw new Error(`input_dims: the model has no input "${name}" (its inputs: ${g.inputs.map((i) => `"${i.name}"`).join(", ")})`);
    const input = g.inputs[index]!;
    const rest = input.dims?.slice(1) ?? [];
    if (rest.length !== dims.length) throw new Error(`input_dims["${name}"]: the input has ${rest.length} dims after the batch, [${rest.join(", ")}]; got ${dims.length}`);
    rest.forEach((d, i) => {
      if (typeof d === "number" && d !== dims[i]) throw new Error(`input_dims["${name}"]: dim ${i + 1} is fixed at ${d} in the model, not ${dims[i]}`);
    });
    g.inputs[index] = { ...input, dims: [input.dims![0]!, ...dims] };
    pinned.push(`${name} [${[input.dims![0], ...dims].join(", ")}]`);
  }
  return `fixed the open input dims: ${pinned.join(", ")} (the published version takes these sizes)`;
}
