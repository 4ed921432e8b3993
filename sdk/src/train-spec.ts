import { DataType } from "./gen/aiaas/v1/tensor.js";
import { Metric, OptimizerType, Task, type BaseModel, type Layer, type TrainSpec } from "./gen/aiaas/v1/training.js";
import { AiaasError, Code } from "./errors.js";
import { checkTrainSpecKeys } from "./train-spec-keys.js";

/** A layer of an architecture, as JSON: the same vocabulary the server's layer library builds. */
export type LayerInput =
  | { readonly type: "dense"; readonly units: number }
  | { readonly type: "conv2d"; readonly filters: number; readonly kernel: number; readonly stride?: number; readonly padding?: number | "same" | "valid" }
  | { readonly type: "maxpool2d" | "avgpool2d"; readonly size: number; readonly stride?: number }
  | { readonly type: "flatten" | "relu" | "tanh" | "sigmoid" | "gelu" | "meanpool" }
  | { readonly type: "dropout"; readonly rate: number }
  | { readonly type: "embedding"; readonly vocab: number; readonly dim: number }
  | { readonly type: "rnn"; readonly units: number; readonly returnSequences?: boolean }
  | { readonly type: "attention"; readonly heads: number }
  | { readonly type: "layernorm"; readonly epsilon?: number }
  | { readonly type: "transformer"; readonly heads: number; readonly feedForward: number; readonly dropout?: number; readonly activation?: "relu" | "gelu" };

/** What to train and how. Omitted fields take the server's defaults (Adam 1e-3, batch 32, 1 epoch, seed 1). */
export interface TrainSpecInput {
  /** The model the trained version is published under (created if new). */
  readonly model: string;
  /** A new model from layers … */
  readonly architecture?: {
    readonly input: { readonly name?: string; readonly dims: readonly number[]; readonly type?: "float32" | "int64" };
    readonly layers: readonly LayerInput[];
  };
  /** … or an existing repository model to fine-tune. */
  readonly baseModel?: {
    readonly name: string;
    readonly version?: string;
    /** Parameter-name prefixes to keep fixed; each must match a parameter. */
    readonly freeze?: readonly string[];
    /** Give each parameter an exporter merged with an equal one (read through Identity) its own copy. */
    readonly untieSharedParameters?: boolean;
    /** Keep BatchNormalization's running statistics fixed (eval mode) while training. */
    readonly freezeBatchnorm?: boolean;
    /** Replace the final classifier by a new one with this many classes (fresh initial weights). */
    readonly head?: { readonly classes: number };
    /** Sizes for the dims a model leaves open, by input name, without the batch dim (e.g. { x: [3, 48, 192] }). */
    readonly inputDims?: Readonly<Record<string, readonly number[]>>;
  };
  readonly task?: "classification" | "regression";
  /** The output the loss reads (default "logits"). */
  readonly output?: string;
  readonly optimizer?: {
    readonly type?: "adam" | "adamw" | "sgd";
    readonly learningRate?: number;
    readonly weightDecay?: number;
    readonly momentum?: number;
    readonly nesterov?: boolean;
    readonly beta1?: number;
    readonly beta2?: number;
    readonly epsilon?: number;
  };
  readonly batchSize?: number;
  readonly epochs?: number;
  readonly seed?: number;
  /** Hold out this fraction of the rows for validation (unless chunks marked `validation` are sent). */
  readonly validationFraction?: number;
  readonly earlyStopping?: { readonly metric?: "loss" | "accuracy"; readonly patience: number; readonly minDelta?: number };
  readonly maxSteps?: number;
  readonly maxSeconds?: number;
  readonly checkpointIntervalSteps?: number;
  readonly metricsIntervalSteps?: number;
  /** A retried train() with the same key attaches to the job the first one created. */
  readonly idempotencyKey?: string;
  /** "<job id>/<checkpoint id>" from a checkpoint event: continue that run. */
  readonly resumeFrom?: string;
}

function layerToWire(layer: LayerInput, index: number): Layer {
  const a = {};
  switch (layer.type) {
    case "dense":
      return { kind: { $case: "dense", value: { units: layer.units } } };
    case "conv2d":
      return {
        kind: {
          $case: "conv2d",
          value: {
            filters: layer.filters,
            kernel: layer.kernel,
            stride: layer.stride ?? 0,
            padding: typeof layer.padding === "number" ? layer.padding : 0,
            same: layer.padding === "same",
          },
        },
      };
    case "maxpool2d":
    case "avgpool2d":
      return { kind: { $case: layer.type, value: { size: layer.size, stride: layer.stride ?? 0 } } };
    case "flatten":
    case "meanpool":
      return { kind: { $case: layer.type, value: a } } as Layer;
    case "relu":
    case "tanh":
    case "sigmoid":
    case "gelu":
      return { kind: { $case: layer.type, value: a } };
    case "dropout":
      return { kind: { $case: "dropout", value: { rate: layer.rate } } };
    case "embedding":
      return { kind: { $case: "embedding", value: { vocab: layer.vocab, dim: layer.dim } } };
    case "rnn":
      return { kind: { $case: "rnn", value: { units: layer.units, returnSequences: layer.returnSequences ?? false } } };
    case "attention":
      return { kind: { $case: "attention", value: { heads: layer.heads } } };
    case "layernorm":
      return { kind: { $case: "layernorm", value: { epsilon: layer.epsilon ?? 0 } } };
    case "transformer":
      return {
        kind: {
          $case: "transformer",
          value: { heads: layer.heads, feedForward: layer.feedForward, dropout: layer.dropout ?? 0, activation: layer.activation ?? "" },
        },
      };
    default:
      throw new AiaasError(Code.INVALID_ARGUMENT, `architecture.layers[${index}]: unknown layer type ${JSON.stringify((layer as { type: unknown }).type)}`);
  }
}

function baseModelToWire(b: NonNullable<TrainSpecInput["baseModel"]>): BaseModel {
  return {
    name: b.name,
    version: b.version ?? "",
    freeze: [...(b.freeze ?? [])],
    untieSharedParameters: b.untieSharedParameters ?? false,
    freezeBatchnorm: b.freezeBatchnorm ?? false,
    head: b.head ? { classes: b.head.classes } : undefined,
    inputDims: Object.fromEntries(Object.entries(b.inputDims ?? {}).map(([name, dims]) => [name, { dims: dims.map((d) => BigInt(d)) }])),
  };
}

const OPTIMIZERS = { adam: OptimizerType.OPTIMIZER_TYPE_ADAM, adamw: OptimizerType.OPTIMIZER_TYPE_ADAMW, sgd: OptimizerType.OPTIMIZER_TYPE_SGD };

export function trainSpecToWire(spec: TrainSpecInput): TrainSpec {
  checkTrainSpecKeys(spec);
  if (Boolean(spec.architecture) === Boolean(spec.baseModel)) {
    throw new AiaasError(Code.INVALID_ARGUMENT, "train: give either architecture (a new model) or baseModel (fine-tune), not both or neither");
  }
  const o = spec.optimizer ?? {};
  return {
    model: spec.model,
    source: spec.architecture
      ? {
          $case: "architecture",
          value: {
            inputName: spec.architecture.input.name ?? "",
            inputShape: spec.architecture.input.dims.map(BigInt),
            inputType: spec.architecture.input.type === "int64" ? DataType.DATA_TYPE_INT64 : DataType.DATA_TYPE_FP32,
            layers: spec.architecture.layers.map(layerToWire),
          },
        }
      : { $case: "baseModel", value: baseModelToWire(spec.baseModel!) },
    task: spec.task === "regression" ? Task.TASK_REGRESSION : Task.TASK_CLASSIFICATION,
    optimizer: {
      type: o.type ? OPTIMIZERS[o.type] : OptimizerType.OPTIMIZER_TYPE_UNSPECIFIED,
      learningRate: o.learningRate,
      weightDecay: o.weightDecay ?? 0,
      momentum: o.momentum ?? 0,
      nesterov: o.nesterov ?? false,
      beta1: o.beta1,
      beta2: o.beta2,
      epsilon: o.epsilon ?? 0,
    },
    // Unset stays unset (the server's default); an explicit 0 reaches the server, which refuses it.
    batchSize: spec.batchSize,
    epochs: spec.epochs,
    seed: spec.seed === undefined ? undefined : BigInt(spec.seed),
    validation: { fraction: spec.validationFraction ?? 0 },
    earlyStopping: spec.earlyStopping
      ? {
          metric: spec.earlyStopping.metric === "accuracy" ? Metric.METRIC_VALIDATION_ACCURACY : Metric.METRIC_VALIDATION_LOSS,
          patience: spec.earlyStopping.patience,
          minDelta: spec.earlyStopping.minDelta ?? 0,
        }
      : undefined,
    limits: { maxSteps: BigInt(spec.maxSteps ?? 0), maxSeconds: spec.maxSeconds ?? 0 },
    checkpointIntervalSteps: spec.checkpointIntervalSteps ?? 0,
    metricsIntervalSteps: spec.metricsIntervalSteps ?? 0,
    idempotencyKey: spec.idempotencyKey ?? "",
    resumeFrom: spec.resumeFrom ?? "",
    output: spec.output ?? "",
  };
}
