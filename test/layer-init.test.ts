// The README says layers are named and initialised as torch.nn.Sequential would: each parameter's initial
// values follow the distribution PyTorch draws from. Compared with PyTorch's own draws (99 percentiles over
// 20 torch seeds, test/fixtures/torch/init-percentiles.json from scripts/torch-init-reference.ts): the
// engine's values over 5 seeds must sit at those percentiles within the Dvoretzky–Kiefer–Wolfowitz bound of
// both samples (α = 0.001), and constants (zero biases, unit LayerNorm weights) must be those constants.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { Graph } from "../server/src/training/onnx/graph.js";
import { TRAINING_FLAG } from "../server/src/training/engine/train-program.js";
import { REFERENCE_MODELS } from "../scripts/reference-models.js";

const torch = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "torch", "init-percentiles.json"), "utf8")) as {
  models: Record<string, Record<string, { count: number; percentiles: number[] }>>;
};
const SEEDS = [1, 2, 3, 4, 5];
/** DKW: with probability 1 − α an empirical CDF of n draws is within this of the true one everywhere. */
const dkw = (n: number): number => Math.sqrt(Math.log(2 / 0.001) / (2 * n));

for (const model of REFERENCE_MODELS) {
  test(`${model.name}: every parameter's initial values follow PyTorch's initial distribution`, (t) => {
    const reference = torch.models[model.name]!;
    const pooled = new Map<string, number[]>();
    for (const seed of SEEDS) {
      for (const [name, tensor] of Graph.fromModel(buildArchitecture(model.spec, { seed })).initializers) {
        if (name === TRAINING_FLAG || tensor.type !== "float32" || tensor.dims.length === 0) continue;
        pooled.set(name, [...(pooled.get(name) ?? []), ...(tensor.data as Float32Array)]);
      }
    }
    assert.deepEqual([...pooled.keys()].sort(), Object.keys(reference).sort(), "the same parameters, by name");
    const lines: string[] = [];
    for (const [name, values] of pooled) {
      const { count, percentiles } = reference[name]!;
      if (percentiles[0] === percentiles[98]) {
        assert.ok(values.every((v) => v === percentiles[0]), `${name}: PyTorch starts it at ${percentiles[0]} everywhere`);
        continue;
      }
      const sorted = Float64Array.from(values).sort();
      const below = (x: number): number => {
        let lo = 0;
        let hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (sorted[mid]! <= x) lo = mid + 1;
          else hi = mid;
        }
        return lo / sorted.length;
      };
      const deviation = Math.max(...percentiles.map((q, k) => Math.abs(below(q) - (k + 1) / 100)));
      const bound = dkw(values.length) + dkw(count);
      assert.ok(deviation <= bound, `${name}: the engine's values are ${deviation.toFixed(4)} from PyTorch's distribution (bound ${bound.toFixed(4)})`);
      lines.push(`${name} ${deviation.toFixed(3)}/${bound.toFixed(3)}`);
    }
    t.diagnostic(`largest CDF gap / bound: ${lines.join(", ")}`);
  });
}
