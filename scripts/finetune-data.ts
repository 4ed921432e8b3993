// Deterministic, learnable 3-class tasks for each PyTorch-exported fixture's input (test/fixtures/torch-export):
// the data both the engine (through the Train RPC) and PyTorch fine-tune on in the fine-tuning parity check.
import { seededRandom } from "./seeded-random.js";

export interface Split {
  readonly x: Float32Array | BigInt64Array;
  readonly y: BigInt64Array;
  readonly count: number;
}

export interface FineTuneTask {
  /** Row dims without the batch. */
  readonly dims: readonly number[];
  readonly type: "float32" | "int64";
  readonly train: Split;
  readonly heldOut: Split;
}

/** What each fixture's model reads. */
export const FINE_TUNE_INPUTS: Record<string, { dims: number[]; type: "float32" | "int64" }> = {
  cnn: { dims: [1, 8, 8], type: "float32" },
  resnet: { dims: [1, 8, 8], type: "float32" },
  mobilenet: { dims: [1, 8, 8], type: "float32" },
  lstm: { dims: [6, 4], type: "float32" },
  rnn: { dims: [6, 4], type: "float32" },
  attention: { dims: [4, 8], type: "float32" },
  transformer: { dims: [6], type: "int64" },
};

export const FINE_TUNE = { trainRows: 600, heldOutRows: 600, batchSize: 32, epochs: 3, learningRate: 3e-3, seed: 7 };

/** One row of class k: a class-specific pattern under noise (images: a bar; sequences: a drifting feature; tokens: a marker). */
function fillRow(input: { dims: number[]; type: string }, k: number, random: () => number, out: Float32Array | BigInt64Array, at: number): void {
  const size = input.dims.reduce((a, b) => a * b, 1);
  if (input.type === "int64") {
    // Class k: token 10 + k appears at a random position among random tokens 0..9.
    for (let i = 0; i < size; i++) (out as BigInt64Array)[at + i] = BigInt(Math.floor(random() * 10));
    (out as BigInt64Array)[at + Math.floor(random() * size)] = BigInt(10 + k);
    return;
  }
  const f = out as Float32Array;
  for (let i = 0; i < size; i++) f[at + i] = (random() - 0.5) * 1.2;
  if (input.dims.length === 3) {
    // 8x8 image: a horizontal bar, a vertical bar or a diagonal, at a random offset.
    const o = Math.floor(random() * 6) + 1;
    for (let i = 0; i < 8; i++) {
      const [r, c] = k === 0 ? [o, i] : k === 1 ? [i, o] : [i, i];
      f[at + r * 8 + c] += 1.5;
    }
    return;
  }
  // [steps, features]: feature k (of the first three) rises over time.
  const [steps, features] = input.dims as [number, number];
  for (let t = 0; t < steps; t++) f[at + t * features + k] += (t + 1) / steps * 1.5;
}

function split(input: { dims: number[]; type: string }, count: number, random: () => number): Split {
  const size = input.dims.reduce((a, b) => a * b, 1);
  const x = input.type === "int64" ? new BigInt64Array(count * size) : new Float32Array(count * size);
  const y = new BigInt64Array(count);
  for (let n = 0; n < count; n++) {
    const k = Math.floor(random() * 3);
    y[n] = BigInt(k);
    fillRow(input, k, random, x, n * size);
  }
  return { x, y, count };
}

export function fineTuneTask(name: string): FineTuneTask {
  const input = FINE_TUNE_INPUTS[name];
  if (!input) throw new Error(`no fine-tuning task for fixture "${name}"`);
  const random = seededRandom(2024 + Object.keys(FINE_TUNE_INPUTS).indexOf(name));
  return { ...input, train: split(input, FINE_TUNE.trainRows, random), heldOut: split(input, FINE_TUNE.heldOutRows, random) };
}
