// Produces the PyTorch fixtures the engine is tested against (test/fixtures/torch/*.bin): for each reference
// model, writes its spec, initial parameters and batches, and runs scripts/torch_reference.py on them.
// Developer tool; needs Debian's python3-torch. Run: node --import tsx scripts/torch-fixtures.ts
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { Graph } from "../server/src/training/onnx/graph.js";
import { TRAINING_FLAG } from "../server/src/training/engine/train-program.js";
import { ADAM_STEPS, REFERENCE_MODELS, referenceBatch } from "./reference-models.js";
import { writeBundle, type BundleTensor } from "../server/src/training/tensor-bundle.js";

const outDir = join(import.meta.dirname, "..", "test", "fixtures", "torch");
mkdirSync(outDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "aiaas-torch-"));

for (const model of REFERENCE_MODELS) {
  const forward = Graph.fromModel(buildArchitecture(model.spec, { seed: model.seed }));
  const tensors = new Map<string, BundleTensor>();
  for (const [name, t] of forward.initializers) {
    if (name === TRAINING_FLAG || t.type !== "float32" || t.dims.length === 0) continue;
    tensors.set(`param:${name}`, { type: "float32", dims: t.dims, data: t.data as Float32Array });
  }
  for (let k = 0; k < ADAM_STEPS; k++) {
    const b = referenceBatch(model, k);
    tensors.set(`batch${k}.input`, { type: model.vocab ? "int64" : "float32", dims: b.dims, data: b.input });
    tensors.set(`batch${k}.labels`, { type: "int64", dims: [model.batch], data: b.labels });
  }
  const input = join(work, `${model.name}.in.bin`);
  writeBundle(input, { meta: { spec: model.spec, optimizers: model.optimizers, steps: ADAM_STEPS }, tensors });
  const output = join(outDir, `${model.name}.bin`);
  execFileSync("/usr/bin/python3", [join(import.meta.dirname, "torch_reference.py"), input, output], { stdio: "inherit" });
  console.log(`wrote ${output}`);
}
