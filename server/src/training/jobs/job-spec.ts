import { DataType, EarlyStopping as WireEarlyStopping, Metric, OptimizerType, Task, type Layer, type TrainSpec } from "@aiaas/sdk/gen";
import { invalidArgument } from "../../common/errors.js";
import { checkModelName } from "../../repository/index.js";
import type { OptimizerSpec } from "../engine/optimizer.js";
import type { ArchitectureSpec, LayerSpec } from "../layers/layer-spec.js";

/** A Train request's spec, checked and with every default filled in. */
export interface JobSpec {
  readonly model: string;
  readonly source:
    | { readonly kind: "architecture"; readonly architecture: ArchitectureSpec }
    | {
        readonly kind: "base";
        readonly name: string;
        readonly version: string;
        readonly freeze: readonly string[];
        readonly untieSharedParameters: boolean;
        readonly freezeBatchnorm: boolean;
        /** A new classifier of this many classes replaces the model's final one. */
        readonly headClasses: number | undefined;
        /** Sizes for open dims, by input name, without the batch dim. */
        readonly inputDims: Readonly<Record<string, readonly number[]>>;
      };
  readonly task: "classification" | "regression";
  readonly output: string;
  readonly optimizer: OptimizerSpec;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seed: number;
  readonly validationFraction: number;
  readonly earlyStopping: { readonly metric: "loss" | "accuracy"; readonly patience: number; readonly minDelta: number } | undefined;
  readonly maxSteps: number;
  readonly maxSeconds: number;
  readonly checkpointIntervalSteps: number;
  readonly metricsIntervalSteps: number;
  readonly idempotencyKey: string;
  readonly resumeFrom: { readonly jobId: string; readonly checkpointId: string } | undefined;
}

export const MAX_EPOCHS = 10_000;
export const MAX_BATCH_SIZE = 65_536;

function layerSpec(layer: Layer, index: number): LayerSpec {
  const kind = layer.kind;
  if (!kind) throw invalidArgument(`architecture.layers[${index}]: no layer kind set (dense, conv2d, maxpool2d, …)`);
  const v = kind.value as unknown as Record<string, number | boolean | string>;
  switch (kind.$case) {
    case "dense":
      return { type: "dense", units: kind.value.units };
    case "conv2d":
      return {
        type: "conv2d",
        filters: kind.value.filters,
        kernel: kind.value.kernel,
        stride: kind.value.stride || 1,
        padding: kind.value.same ? "same" : kind.value.padding,
      };
    case "maxpool2d":
    case "avgpool2d":
      return { type: kind.$case, size: kind.value.size, stride: kind.value.stride || kind.value.size };
    case "flatten":
    case "relu":
    case "tanh":
    case "sigmoid":
    case "gelu":
    case "meanpool":
      return { type: kind.$case };
    case "dropout":
      return { type: "dropout", rate: kind.value.rate };
    case "embedding":
      return { type: "embedding", vocab: kind.value.vocab, dim: kind.value.dim };
    case "rnn":
      return { type: "rnn", units: kind.value.units, returnSequences: kind.value.returnSequences };
    case "attention":
      return { type: "attention", heads: kind.value.heads };
    case "layernorm":
      return { type: "layernorm", epsilon: kind.value.epsilon || 1e-5 };
    case "transformer": {
      const activation = kind.value.activation || "relu";
      if (activation !== "relu" && activation !== "gelu") {
        throw invalidArgument(`architecture.layers[${index}] (transformer): activation must be "relu" or "gelu", got ${JSON.stringify(activation)}`);
      }
      return { type: "transformer", heads: kind.value.heads, feedForward: kind.value.feedForward, dropout: kind.value.dropout, activation };
    }
    default:
      throw invalidArgument(`architecture.layers[${index}]: unknown layer kind ${JSON.stringify(v)}`);
  }
}

/** A count the user may leave unset (the default) but not set to 0: proto3 `optional` tells the two apart. */
const positive = (value: number | undefined, field: string, max: number, fallback: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalidArgument(`${field} must be an integer from 1 to ${max}, got ${value}`);
  return value;
};

function optimizer(spec: TrainSpec): { optimizer: OptimizerSpec; learningRate: number } {
  const o = spec.optimizer;
  const type = o?.type ?? OptimizerType.OPTIMIZER_TYPE_UNSPECIFIED;
  const finite = (value: number, field: string, lo: number, hi: number): number => {
    if (!Number.isFinite(value) || value < lo || value > hi) throw invalidArgument(`optimizer.${field} must be from ${lo} to ${hi}, got ${value}`);
    return value;
  };
  const learningRate = (fallback: number): number => {
    const lr = o?.learningRate ?? fallback;
    if (!(lr > 0 && lr <= 10)) throw invalidArgument(`optimizer.learning_rate must be greater than 0 and at most 10, got ${lr}; leave it unset for the default (${fallback})`);
    return lr;
  };
  const weightDecay = finite(o?.weightDecay ?? 0, "weight_decay", 0, 1);
  if (type === OptimizerType.OPTIMIZER_TYPE_SGD) {
    return {
      optimizer: { type: "sgd", momentum: finite(o?.momentum ?? 0, "momentum", 0, 0.9999), nesterov: o?.nesterov ?? false, weightDecay },
      learningRate: learningRate(1e-2),
    };
  }
  if (type !== OptimizerType.OPTIMIZER_TYPE_ADAM && type !== OptimizerType.OPTIMIZER_TYPE_ADAMW && type !== OptimizerType.OPTIMIZER_TYPE_UNSPECIFIED) {
    throw invalidArgument(`optimizer.type ${type} is not one of ADAM, ADAMW, SGD`);
  }
  return {
    optimizer: {
      type: type === OptimizerType.OPTIMIZER_TYPE_ADAMW ? "adamw" : "adam",
      beta1: finite(o?.beta1 ?? 0.9, "beta1", 0, 0.99999),
      beta2: finite(o?.beta2 ?? 0.999, "beta2", 0, 0.999999),
      epsilon: finite(o?.epsilon || 1e-8, "epsilon", 1e-12, 1),
      weightDecay,
    },
    learningRate: learningRate(1e-3),
  };
}

function earlyStopping(e: WireEarlyStopping | undefined): JobSpec["earlyStopping"] {
  if (!e || e.patience === 0) return undefined;
  if (!Number.isFinite(e.minDelta) || e.minDelta < 0) throw invalidArgument(`early_stopping.min_delta must be ≥ 0, got ${e.minDelta}`);
  return { metric: e.metric === Metric.METRIC_VALIDATION_ACCURACY ? "accuracy" : "loss", patience: e.patience, minDelta: e.minDelta };
}

function inputDims(wire: Record<string, { dims: bigint[] }>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, { dims }] of Object.entries(wire)) {
    const values = dims.map(Number);
    if (values.length === 0 || values.some((d) => !Number.isSafeInteger(d) || d < 1 || d > 1_000_000)) {
      throw invalidArgument(`base_model.input_dims["${name.slice(0, 80)}"]: give each dim after the batch as an integer from 1 to 1000000, got [${dims.join(", ")}]`);
    }
    out[name] = values;
  }
  return out;
}

/** Checks a wire TrainSpec; INVALID_ARGUMENT names the field and says what it accepts. */
export function parseJobSpec(spec: TrainSpec): JobSpec {
  if (!spec.model) throw invalidArgument("spec.model: name the model to publish the trained version under");
  checkModelName(spec.model);
  let source: JobSpec["source"];
  if (spec.source?.$case === "architecture") {
    const a = spec.source.value;
    if (a.layers.length === 0) throw invalidArgument("architecture.layers: list at least one layer");
    if (a.inputShape.length === 0) throw invalidArgument("architecture.input_shape: give the input shape without the batch dim, e.g. [1, 28, 28]");
    const inputType = a.inputType === DataType.DATA_TYPE_INT64 ? "int64" : a.inputType === DataType.DATA_TYPE_FP32 || a.inputType === DataType.DATA_TYPE_UNSPECIFIED ? "float32" : undefined;
    if (!inputType) throw invalidArgument("architecture.input_type must be DATA_TYPE_FP32 or DATA_TYPE_INT64 (token ids)");
    source = {
      kind: "architecture",
      architecture: {
        input: { name: a.inputName || "input", dims: a.inputShape.map(Number), type: inputType },
        layers: a.layers.map(layerSpec),
        task: spec.task === Task.TASK_REGRESSION ? "regression" : "classification",
      },
    };
  } else if (spec.source?.$case === "baseModel") {
    const b = spec.source.value;
    if (!b.name) throw invalidArgument("base_model.name: name the repository model to fine-tune");
    checkModelName(b.name);
    if (b.version && !/^[1-9][0-9]{0,8}$/.test(b.version)) throw invalidArgument(`base_model.version "${b.version.slice(0, 40)}" is not a positive integer`);
    if (b.freeze.some((f) => f === "")) throw invalidArgument("base_model.freeze: an empty prefix would freeze every parameter; name the parameters to keep fixed");
    if (b.head && !(Number.isInteger(b.head.classes) && b.head.classes >= 2 && b.head.classes <= 100_000)) {
      throw invalidArgument(`base_model.head.classes must be an integer from 2 to 100000, got ${b.head.classes}`);
    }
    source = {
      kind: "base",
      name: b.name,
      version: b.version,
      freeze: b.freeze,
      untieSharedParameters: b.untieSharedParameters,
      freezeBatchnorm: b.freezeBatchnorm,
      headClasses: b.head?.classes,
      inputDims: inputDims(b.inputDims),
    };
  } else {
    throw invalidArgument("spec: set either architecture (a new model) or base_model (fine-tune a repository model)");
  }
  const fraction = spec.validation?.fraction ?? 0;
  if (!(fraction >= 0 && fraction < 1)) throw invalidArgument(`validation.fraction must be in [0, 1), got ${fraction}`);
  const { optimizer: opt, learningRate } = optimizer(spec);
  const [jobId, checkpointId] = spec.resumeFrom ? spec.resumeFrom.split("/") : [];
  if (spec.resumeFrom && (!jobId || !checkpointId || !/^[A-Za-z0-9-]+$/.test(jobId) || !/^[0-9]+$/.test(checkpointId))) {
    throw invalidArgument(`resume_from "${spec.resumeFrom.slice(0, 80)}" is not "<job_id>/<checkpoint_id>" as a CheckpointCreated event names it`);
  }
  const seed = Number(spec.seed ?? 1n);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) throw invalidArgument(`seed must fit in 32 bits, got ${spec.seed}`);
  return {
    model: spec.model,
    source,
    task: spec.task === Task.TASK_REGRESSION ? "regression" : "classification",
    output: spec.output || "logits",
    optimizer: opt,
    learningRate,
    batchSize: positive(spec.batchSize, "batch_size", MAX_BATCH_SIZE, 32),
    epochs: positive(spec.epochs, "epochs", MAX_EPOCHS, 1),
    seed,
    validationFraction: fraction,
    earlyStopping: earlyStopping(spec.earlyStopping),
    maxSteps: Number(spec.limits?.maxSteps ?? 0n),
    maxSeconds: spec.limits?.maxSeconds ?? 0,
    checkpointIntervalSteps: spec.checkpointIntervalSteps,
    metricsIntervalSteps: spec.metricsIntervalSteps || 10,
    idempotencyKey: spec.idempotencyKey.slice(0, 256),
    resumeFrom: spec.resumeFrom ? { jobId: jobId!, checkpointId: checkpointId! } : undefined,
  };
}
