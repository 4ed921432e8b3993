import type { ModelProto } from "onnx-buf";
import { appendBackward } from "../autodiff/backward.js";
import type { ConstTensor, Dim } from "../onnx/graph-builder.js";
import type { ElementType } from "../onnx/element-type.js";
import { Graph } from "../onnx/graph.js";
import { foldConstants } from "../onnx/constant-folding.js";
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
}

/** What the engine runs: the train-step and eval graphs and the names that connect them. */
export interface TrainProgram {
  /** The forward model the program trains (its initializers are the initial weights). */
  readonly forward: ModelProto;
  /** inputs: data…, labels, lr, step, params, state → outputs: loss, correct?, `<p>.next`, `<p>.<slot>.next`. */
  readonly trainModel: ModelProto;
  /** inputs: data…, labels, params → outputs: loss, correct?. */
  readonly evalModel: ModelProto;
  readonly inputs: readonly TensorSpec[];
  readonly labels: TensorSpec;
  readonly params: readonly TensorSpec[];
  readonly initialParams: ReadonlyMap<string, ConstTensor>;
  /** Optimizer state tensor names per parameter slot, e.g. ["exp_avg", "exp_avg_sq"]. */
  readonly slots: readonly string[];
  readonly frozen: readonly string[];
  readonly classification: boolean;
}

export const nextName = (name: string): string => `${name}.next`;
export const stateName = (param: string, slot: string): string => `${param}.${slot}`;

/** Float initializers of rank ≥ 1 are parameters (rank-0 initializers are constants such as exponents). */
function candidateParams(g: Graph): string[] {
  return [...g.initializers]
    .filter(([name, t]) => (t.type === "float32" || t.type === "float64") && t.dims.length >= 1 && name !== TRAINING_FLAG)
    .map(([name]) => name);
}

function isFrozen(name: string, freeze: readonly (string | RegExp)[]): boolean {
  return freeze.some((f) => (typeof f === "string" ? name.startsWith(f) : f.test(name)));
}

/** The forward graph with exporters' constant shape arithmetic folded away. */
function loadForward(forward: ModelProto): Graph {
  const g = Graph.fromModel(forward);
  foldConstants(g);
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

/**
 * Builds the train-step graph (forward, loss, backward and optimizer update in standard ONNX ops) and the
 * eval graph for a forward model.
 */
export function buildTrainProgram(forward: ModelProto, options: TrainProgramOptions): TrainProgram {
  const probe = Graph.fromModel(forward);
  const freeze = options.freeze ?? [];
  const candidates = candidateParams(probe);
  const frozen = candidates.filter((p) => isFrozen(p, freeze));
  let params = candidates.filter((p) => !frozen.includes(p));
  if (params.length === 0) throw new Error("nothing to train: every float parameter is frozen");
  const dataInputs = probe.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims ?? [] }));

  // Train graph. Parameters stay initializers while gradients are derived, so shape inference sees their values.
  const g = loadForward(forward);
  if (g.opset < 13) throw new Error(`training needs a model at opset 13 or later (this one is opset ${g.opset})`);
  g.opset = Math.max(g.opset, 17); // ScatterND/ScatterElements reductions in gradients need 16+
  setTrainingFlag(g, true);
  g.outputs.length = 0;
  const head = appendLossHead(g, options.loss);
  const { gradients, unreached } = appendBackward(g, head.loss, params);
  params = params.filter((p) => !unreached.includes(p));
  const slots = optimizerSlots(options.optimizer);
  const lr = g.addInput("lr", g.typeOf(params[0]!).type, []);
  const step = g.addInput("step", g.typeOf(params[0]!).type, []);
  const withState = params.map((p) => {
    const dims = g.dimsOf(p)!;
    const state = slots.map((slot) => g.addInput(stateName(p, slot), g.typeOf(p).type, dims));
    return { param: p, grad: gradients.get(p)!, state };
  });
  const updates = appendOptimizer(g, options.optimizer, { lr, step }, withState);
  g.add("Identity", [head.loss], { outputs: ["loss"] });
  g.addOutput("loss", []);
  if (head.correct) {
    g.add("Identity", [head.correct], { outputs: ["correct"] });
    g.addOutput("correct", []);
  }
  updates.forEach((u, i) => {
    const p = params[i]!;
    g.add("Identity", [u.param], { outputs: [nextName(p)] });
    g.addOutput(nextName(p));
    u.state.forEach((s, k) => {
      const name = nextName(stateName(p, slots[k]!));
      g.add("Identity", [s], { outputs: [name] });
      g.addOutput(name);
    });
  });
  liftParams(g, params);

  // Eval graph: forward + loss + metrics with parameters as inputs, so it evaluates the weights being trained.
  const e = loadForward(forward);
  e.outputs.length = 0;
  setTrainingFlag(e, false);
  const evalHead = appendLossHead(e, options.loss);
  e.add("Identity", [evalHead.loss], { outputs: ["loss"] });
  e.addOutput("loss", []);
  if (evalHead.correct) {
    e.add("Identity", [evalHead.correct], { outputs: ["correct"] });
    e.addOutput("correct", []);
  }
  e.prune();
  liftParams(e, params.filter((p) => e.initializers.has(p)));
  // Keep only the parameters the eval graph reads, as inputs in a fixed order.
  const initialParams = new Map(params.map((p) => [p, probe.initializers.get(p)!]));
  return {
    forward,
    trainModel: g.toModel({ docString: "aiaas train step" }),
    evalModel: e.toModel({ docString: "aiaas eval" }),
    inputs: dataInputs,
    labels: { name: head.labels, type: g.typeOf(head.labels).type, dims: g.dimsOf(head.labels) ?? [] },
    params: params.map((p) => ({ name: p, type: probe.initializers.get(p)!.type, dims: probe.initializers.get(p)!.dims })),
    initialParams,
    slots,
    frozen,
    classification: options.loss.kind === "cross-entropy",
  };
}

/**
 * The inference graph: the forward model with trained weights baked in as initializers (ORT's fast
 * convolution path applies only to constant weights) and training-only behaviour switched off.
 */
export function bakeWeights(forward: ModelProto, params: ReadonlyMap<string, ConstTensor>, docString?: string): ModelProto {
  const g = loadForward(forward);
  for (const [name, tensor] of params) {
    const old = g.initializers.get(name);
    if (!old) {
      if (forward.graph?.initializer.some((i) => i.name === name)) continue; // unused by any output: folded away
      throw new Error(`parameter "${name}" is not an initializer of the model`);
    }
    if (old.dims.join() !== tensor.dims.join()) throw new Error(`parameter "${name}": dims [${tensor.dims}] do not match [${old.dims}]`);
    g.initializers.set(name, tensor);
  }
  setTrainingFlag(g, false);
  return g.toModel({ docString });
}

/**
 * Forward + loss + backward only: outputs `loss` and `grad.<param>` for every trained parameter, which stay
 * initializers. For checking gradients against another framework and for debugging a model.
 */
export function buildGradientModel(forward: ModelProto, options: Pick<TrainProgramOptions, "loss" | "freeze">): { model: ModelProto; params: string[] } {
  const g = loadForward(forward);
  g.opset = Math.max(g.opset, 17);
  setTrainingFlag(g, true);
  g.outputs.length = 0;
  const params = candidateParams(Graph.fromModel(forward)).filter((p) => !isFrozen(p, options.freeze ?? []));
  const head = appendLossHead(g, options.loss);
  const { gradients } = appendBackward(g, head.loss, params);
  g.add("Identity", [head.loss], { outputs: ["loss"] });
  g.addOutput("loss", []);
  for (const [p, grad] of gradients) {
    g.add("Identity", [grad], { outputs: [`grad.${p}`] });
    g.addOutput(`grad.${p}`);
  }
  return { model: g.toModel({ docString: "aiaas gradients" }), params: [...gradients.keys()] };
}
