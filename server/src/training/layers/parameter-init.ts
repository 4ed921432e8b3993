import { seededRandom } from "../seeded-random.js";

/** Seeded parameter initialisers with PyTorch's default distributions. */
export interface ParameterInit {
  /** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): torch's Linear, Conv and RNN default. */
  uniform(count: number, fanIn: number): Float32Array;
  /** Xavier-uniform, as torch initialises MultiheadAttention's packed input projection. */
  xavier(count: number, fanIn: number, fanOut: number): Float32Array;
  /** N(0, 1): torch's Embedding default. */
  normal(count: number): Float32Array;
  fill(count: number, value: number): Float32Array;
}

export function parameterInit(seed: number): ParameterInit {
  const random = seededRandom(seed);
  const uniformBound = (count: number, bound: number): Float32Array => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = (random() * 2 - 1) * bound;
    return out;
  };
  return {
    uniform: (count, fanIn) => uniformBound(count, 1 / Math.sqrt(fanIn)),
    xavier: (count, fanIn, fanOut) => uniformBound(count, Math.sqrt(6 / (fanIn + fanOut))),
    normal(count) {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i += 2) {
        const u = Math.max(random(), 1e-12);
        const v = random();
        const r = Math.sqrt(-2 * Math.log(u));
        out[i] = r * Math.cos(2 * Math.PI * v);
        if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
      }
      return out;
    },
    fill: (count, value) => new Float32Array(count).fill(value),
  };
}
