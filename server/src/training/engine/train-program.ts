import type { ModelProto } from "onnx-buf";
import { appendBackward } from "../autodiff/backward.js";
import type { ConstTensor, Dim } from "../onnx/graph-builder.js";
import type { ElementType } from "../onnx/element-type.js";
import { Graph } from "../onnx/graph.js";
import { foldConstants } from "../onnx/constant-folding.js";
import { sharedParameters, type SharedParameter } from "../onnx/shared-parameters.js";
import { parameterCandidates, prepareForward, type PrepareOptions } from "./prepare-forward.js";
import { batchNormStats, trainingModeBatchNorm } from "./batch-norm.js";
import { unrollRecurrent } from "./recurrent.js";
import { appendLossHead, type LossSpec } from "./loss-head.js";
import { appendOptimizer, optimizerSlots, type OptimizerSpec } from "./optimizer.js";

/** The bool initializer that switches layers such as Dropout between training and inference behaviour. */
export const TRAINING_FLAG = "aiaas.training";

export interface TensorSpec {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly Dim[];
}

export interface TrainProgramOptions {
  readonly loss: LossSpec;
  readonly optimizer: OptimizerSpec;
  /** Parameters to keep fixed: a string freezes every parameter whose name starts with it; a RegExp, those it matches. */
  readonly freeze?: readonly (string | RegExp)[];
  /** Give each value that reads a parameter through Identity its own copy (see untieSharedParameters). */
  readonly untieSharedParameters?: boolean;
  /** Keep BatchNormalization in eval mode (running statistics fixed) instead of training mode. */
  readonly freezeBatchnorm?: boolean;
  /** Replace the classifier producing the loss's output by a fresh one of `classes` outputs. */
  readonly head?: { readonly classes: number; readonly seed: number };
  /** Sizes for the dims the model leaves open, by input name, without the batch dim. */
  readonly inputDims?: Readonly<Record<string, readonly number[]>>;
}

/** What preparing the forward model needs of the program's options. */
const prepareOptions = (options: Pick<TrainProgramOptions, "loss" | "untieSharedParameters" | "head" | "inputDims">): PrepareOptions => ({
  untieSharedParameters: options.untieSharedParameters,
  inputDims: options.inputDims,
  head: options.head && { ...options.head, output: options.loss.output },
});

/** What the engine runs: the train-step and eval graphs and the names that connect them. */
export interface TrainProgram {
  /** The forward model the program trains, as prepared for training (its initializers are the initial weights). */
  readonly forward: ModelProto;
  /** inputs: data…, labels, lr, step, params, state → outputs: loss, correct?, `<p>.next`, `<p>.<slot>.next`. */
  readonly trainModel: ModelProto;
  /** inputs: data…, labels, params → outputs: loss, correct?. */
  readonly evalModel: ModelProto;
  readonly inputs: readonly TensorSpec[];
  readonly labels: TensorSpec;
  readonly params: readonly TensorSpec[];
  /** Running statistics (BatchNormalization's mean and variance in training mode): `<b>.next` each step, no optimizer. */
  readonly buffers: readonly TensorSpec[];
  /** Initial values of the parameters and the buffers. */
  readonly initialParams: ReadonlyMap<string, ConstTensor>;
  /** Optimizer state tensor names per parameter slot, e.g. ["exp_avg", "exp_avg_sq"]. */
  readonly slots: readonly string[];
  readonly frozen: readonly string[];
  /** Trained parameters read in more than one place: each gets the sum of its uses' gradients. */
  readonly shared: readonly SharedParameter[];
  /** What preparing the model changed, for the job's first events (parameters untied …). */
  readonly notes: readonly string[];
  /** Parameters nothing trains: the loss does not depend on them. */
  readonly unreached: readonly string[];
  readonly classification: boolean;
}

export const nextName = (name: string): string => `${name}.next`;
export const stateName = (param: string, slot: string): string => `${param}.${slot}`;

const matches = (name: string, f: string | RegExp): boolean => (typeof f === "string" ? name.startsWith(f) : f.test(name));

function isFrozen(name: string, freeze: readonly (string | RegExp)[]): boolean {
  return freeze.some((f) => matches(name, f));
}

/** The parameters to train; a freeze pattern that matches no parameter is an error naming it (a typo would train everything). */
function trainedParams(candidates: readonly string[], freeze: readonly (string | RegExp)[]): { params: string[]; frozen: string[] } {
  for (const f of freeze) {
    if (!candidates.some((p) => matches(p, f))) {
      const some = candidates.slice(0, 8).map((p) => `"${p}"`).join(", ");
      throw new Error(`freeze pattern ${JSON.stringify(String(f))} matches no parameter (the model's parameters: ${some}${candidates.length > 8 ? ", …" : ""})`);
    }
  }
  const frozen = candidates.filter((p) => isFrozen(p, freeze));
  const params = candidates.filter((p) => !frozen.includes(p));
  if (params.length === 0) throw new Error(`nothing to train: the freeze patterns cover all ${candidates.length} parameters`);
  return { params, frozen };
}

/** The forward graph with exporters' constant shape arithmetic folded away; nothing computed from `variables` is folded. */
function loadForward(forward: ModelProto, variables: Iterable<string>): Graph {
  const protect = [...variables];
  let g = Graph.fromModel(forward);
  // A folded value can make later shapes known (torch's Pad computes its pads), and those let more fold:
  // re-infer and fold again until nothing changes.
  for (let round = 0; round < 8 && foldConstants(g, { variables: protect }) > 0; round++) g = Graph.fromModel(g.toModel());
  return g;
}

/** Turns parameters from initializers into graph inputs (same names). */
function liftParams(g: Graph, params: readonly string[]): void {
  for (const p of params) {
    const t = g.initializers.get(p)!;
    g.initializers.delete(p);
    g.inputs.push({ name: p, type: t.type, dims: t.dims });
  }
}

function setTrainingFlag(g: Graph, on: boolean): void {
  if (g.initializers.has(TRAINING_FLAG)) g.initializers.set(TRAINING_FLAG, { type: "bool", dims: [], data: Uint8Array.of(on ? 1 : 0) });
}

/** Emits `value` under `name` as a graph output. */
function output(g: Graph, value: string, name: string, dims?: readonly Dim[]): void {
  g.add("Identity", [value], { outputs: [name] });
  g.addOutput(name, dims);
}

interface TrainGraph {
  readonly graph: Graph;
  readonly labels: string;
  /** The parameters gradients reach (the others are unreached). */
  readonly params: string[];
  readonly unreached: readonly string[];
  readonly shared: readonly SharedParameter[];
  readonly note: string | undefined;
}

/**
 * The train step: forward (BatchNormalization in training mode unless frozen), loss, backward and optimizer
 * update. Parameters stay initializers while gradients are derived, so shape inference sees their values.
 */
function trainGraph(forward: ModelProto, options: TrainProgramOptions, trainable: readonly string[], buffers: readonly string[]): TrainGraph {
  const g = loadForward(forward, [...trainable, ...buffers]);
  if (g.opset < 13) throw new Error(`training needs a model at opset 13 or later (this one is opset ${g.opset})`);
  g.opset = Math.max(g.opset, 17); // ScatterND/ScatterElements reductions in gradients need 16+
  setTrainingFlag(g, true);
  g.outputs.length = 0;
  const statistics = buffers.length > 0 ? trainingModeBatchNorm(g) : new Map<string, string>();
  unrollRecurrent(g);
  const head = appendLossHead(g, options.loss);
  const shared = sharedParameters(g, trainable);
  const { gradients, unreached } = appendBackward(g, head.loss, trainable);
  const params = trainable.filter((p) => !unreached.includes(p));
  const slots = optimizerSlots(options.optimizer);
  const lr = g.addInput("lr", g.typeOf(params[0]!).type, []);
  const step = g.addInput("step", g.typeOf(params[0]!).type, []);
  const withState = params.map((p) => {
    const dims = g.dimsOf(p)!;
    const state = slots.map((slot) => g.addInput(stateName(p, slot), g.typeOf(p).type, dims));
    return { param: p, grad: gradients.get(p)!, state };
  });
  const updates = appendOptimizer(g, options.optimizer, { lr, step }, withState);
  output(g, head.loss, "loss", []);
  if (head.correct) output(g, head.correct, "correct", []);
  updates.forEach((u, i) => {
    const p = params[i]!;
    output(g, u.param, nextName(p));
    u.state.forEach((s, k) => output(g, s, nextName(stateName(p, slots[k]!))));
  });
  for (const b of buffers) output(g, statistics.get(b)!, nextName(b));
  liftParams(g, [...params, ...buffers]);
  return { graph: g, labels: head.labels, params, unreached, shared: shared.filter((s) => params.includes(s.parameter)), note: head.note };
}

/** Forward + loss + metrics with parameters and statistics as inputs, so it evaluates the weights being trained. */
function evalGraph(forward: ModelProto, options: TrainProgramOptions, variables: readonly string[]): Graph {
  const e = loadForward(forward, variables);
  e.outputs.length = 0;
  setTrainingFlag(e, false);
  const head = appendLossHead(e, options.loss);
  output(e, head.loss, "loss", []);
  if (head.correct) output(e, head.correct, "correct", []);
  e.prune();
  liftParams(e, variables.filter((p) => e.initializers.has(p)));
  return e;
}

/**
 * Builds the train-step graph (forward, loss, backward and optimizer update in standard ONNX ops) and the
 * eval graph for a forward model.
 */
export function buildTrainProgram(source: ModelProto, options: TrainProgramOptions): TrainProgram {
  const { forward, notes } = prepareForward(source, prepareOptions(options));
  const probe = Graph.fromModel(forward);
  const statistics = batchNormStats(probe);
  const candidates = parameterCandidates(probe);
  if (candidates.length === 0) throw new Error("the model has no float initializers to train");
  const { params: trainable, frozen } = trainedParams(candidates, options.freeze ?? []);
  // Running statistics are updated each step in training mode; with freeze_batchnorm they stay constants.
  const buffers = options.freezeBatchnorm ? [] : statistics;
  const t = trainGraph(forward, options, trainable, buffers);
  const e = evalGraph(forward, options, [...t.params, ...buffers]);
  const spec = (name: string): TensorSpec => ({ name, type: probe.initializers.get(name)!.type, dims: probe.initializers.get(name)!.dims });
  return {
    forward,
    trainModel: t.graph.toModel({ docString: "aiaas train step" }),
    evalModel: e.toModel({ docString: "aiaas eval" }),
    inputs: probe.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims ?? [] })),
    labels: { name: t.labels, type: t.graph.typeOf(t.labels).type, dims: t.graph.dimsOf(t.labels) ?? [] },
    params: t.params.map(spec),
    buffers: buffers.map(spec),
    initialParams: new Map([...t.params, ...buffers].map((p) => [p, probe.initializers.get(p)!])),
    slots: optimizerSlots(options.optimizer),
    frozen,
    shared: t.shared,
    notes: [
      ...notes,
      ...(t.note ? [t.note] : []),
      ...(options.freezeBatchnorm && statistics.length > 0 ? [`BatchNormalization kept in eval mode (freeze_batchnorm): ${statistics.length / 2} layers' running statistics stay fixed`] : []),
    ],
    unreached: t.unreached,
    classification: options.loss.kind === "cross-entropy",
  };
}

/**
 * The inference graph: the forward model with trained weights baked in as initializers (ORT's fast
 * convolution path applies only to constant weights) and training-only behaviour switched off.
 */
export function bakeWeights(forward: ModelProto, params: ReadonlyMap<string, ConstTensor>, docString?: string): ModelProto {
  const g = Graph.fromModel(forward);
  for (const [name, tensor] of params) {
    const old = g.initializers.get(name);
    if (!old) throw new Error(`parameter "${name}" is not an initializer of the model`);
    if (old.dims.join() !== tensor.dims.join()) throw new Error(`parameter "${name}": dims [${tensor.dims}] do not match [${old.dims}]`);
    g.initializers.set(name, tensor);
  }
  setTrainingFlag(g, false);
  // Folded after the trained values are in, so whatever reads a parameter (through Identity …) reads the trained value.
  foldConstants(g);
  return g.toModel({ docString });
}

/**
 * Forward + loss + backward only: outputs `loss`, `grad.<param>` for every trained parameter and `stat.<s>` for
 * every running statistic BatchNormalization updates in training mode; parameters stay
 * initializers. For checking gradients against another framework and for debugging a model.
 */
export function buildGradientModel(
  source: ModelProto,
  options: Pick<TrainProgramOptions, "loss" | "freeze" | "untieSharedParameters" | "freezeBatchnorm" | "head" | "inputDims">,
): { model: ModelProto; params: string[]; statistics: string[] } {
  const { forward } = prepareForward(source, prepareOptions(options));
  const probe = Graph.fromModel(forward);
  const statistics = options.freezeBatchnorm ? [] : batchNormStats(probe);
  const { params } = trainedParams(parameterCandidates(probe), options.freeze ?? []);
  const g = loadForward(forward, [...params, ...statistics]);
  g.opset = Math.max(g.opset, 17);
  setTrainingFlag(g, true);
  g.outputs.length = 0;
  const next = statistics.length > 0 ? trainingModeBatchNorm(g) : new Map<string, string>();
  unrollRecurrent(g);
  const head = appendLossHead(g, options.loss);
  const { gradients } = appendBackward(g, head.loss, params);
  output(g, head.loss, "loss", []);
  for (const [p, grad] of gradients) output(g, grad, `grad.${p}`);
  // The running statistics after this batch, as a training step would leave them.
  for (const s of statistics) output(g, next.get(s)!, `stat.${s}`);
  return { model: g.toModel({ docString: "aiaas gradients" }), params: [...gradients.keys()], statistics };
}
