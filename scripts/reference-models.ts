// The architectures the engine is cross-checked on against PyTorch (scripts/torch_reference.py), with
// their deterministic batches. The fixture script and the tests both build them from here.
import type { ArchitectureSpec } from "../server/src/training/layers/layer-spec.js";
import type { OptimizerSpec } from "../server/src/training/engine/optimizer.js";
import { loadMnist } from "./mnist-data.js";
import { seededRandom } from "./seeded-random.js";

export interface ReferenceModel {
  readonly name: string;
  readonly spec: ArchitectureSpec;
  readonly seed: number;
  readonly batch: number;
  readonly classes: number;
  /** Token-id inputs draw integers below this. */
  readonly vocab?: number;
  /** Batches of real MNIST digits instead of uniform noise: zero backgrounds give ReLU's zeros and MaxPool's
   * tied windows, whose gradient routing noise never exercises. */
  readonly digits?: boolean;
  readonly optimizers: readonly { readonly name: string; readonly spec: OptimizerSpec; readonly lr: number }[];
}

const adam = { name: "adam", spec: { type: "adam" }, lr: 1e-3 } as const;
const allOptimizers = [
  adam,
  { name: "adamw", spec: { type: "adamw", weightDecay: 0.05 }, lr: 2e-3 },
  { name: "sgd", spec: { type: "sgd", momentum: 0.9, weightDecay: 1e-3 }, lr: 0.05 },
] as const;

export const SEED_CNN: ArchitectureSpec = {
  input: { name: "image", dims: [1, 28, 28] },
  layers: [
    { type: "conv2d", filters: 32, kernel: 3, padding: 1 },
    { type: "relu" },
    { type: "maxpool2d", size: 2 },
    { type: "conv2d", filters: 64, kernel: 3, padding: 1 },
    { type: "relu" },
    { type: "maxpool2d", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 128 },
    { type: "relu" },
    { type: "dense", units: 10 },
  ],
};

export const REFERENCE_MODELS: readonly ReferenceModel[] = [
  { name: "cnn", spec: SEED_CNN, seed: 11, batch: 16, classes: 10, digits: true, optimizers: [adam] },
  {
    name: "rnn",
    spec: { input: { dims: [5, 3] }, layers: [{ type: "rnn", units: 8 }, { type: "dense", units: 4 }] },
    seed: 12,
    batch: 6,
    classes: 4,
    optimizers: allOptimizers,
  },
  {
    name: "attention",
    spec: {
      input: { dims: [4, 8] },
      layers: [{ type: "attention", heads: 2 }, { type: "layernorm" }, { type: "gelu" }, { type: "meanpool" }, { type: "dense", units: 3 }],
    },
    seed: 13,
    batch: 5,
    classes: 3,
    optimizers: allOptimizers,
  },
  {
    name: "transformer",
    spec: {
      input: { dims: [6], type: "int64" },
      layers: [
        { type: "embedding", vocab: 11, dim: 8 },
        { type: "transformer", heads: 2, feedForward: 16 },
        { type: "transformer", heads: 2, feedForward: 16, activation: "gelu" },
        { type: "meanpool" },
        { type: "dense", units: 3 },
      ],
    },
    seed: 14,
    batch: 4,
    classes: 3,
    vocab: 11,
    optimizers: allOptimizers,
  },
];

/** Batch k of a reference model: inputs in [-1, 1) (or token ids, or MNIST digits) and class labels. */
export function referenceBatch(model: ReferenceModel, k: number): { input: Float32Array | BigInt64Array; labels: BigInt64Array; dims: number[] } {
  const random = seededRandom(1000 * model.seed + k);
  const dims = [model.batch, ...model.spec.input.dims];
  if (model.digits) {
    const { train } = loadMnist();
    const first = k * model.batch;
    const input = train.images.slice(first * 784, (first + model.batch) * 784);
    return { input, labels: BigInt64Array.from(train.labels.subarray(first, first + model.batch), BigInt), dims };
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const input = model.vocab
    ? BigInt64Array.from({ length: count }, () => BigInt(Math.floor(random() * model.vocab!)))
    : Float32Array.from({ length: count }, () => random() * 2 - 1);
  const labels = BigInt64Array.from({ length: model.batch }, () => BigInt(Math.floor(random() * model.classes)));
  return { input, labels, dims };
}

export const ADAM_STEPS = 3;
