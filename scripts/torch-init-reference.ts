// PyTorch's initial-weight distributions for the reference architectures (test/fixtures/torch/init-percentiles.json):
// the 99 percentiles of every parameter over 20 torch seeds, which test/layer-init.test.ts compares the
// engine's own initialisation against. Developer tool (python3-torch).
// Run: node --import tsx scripts/torch-init-reference.ts
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REFERENCE_MODELS } from "./reference-models.js";

const out = join(import.meta.dirname, "..", "test", "fixtures", "torch", "init-percentiles.json");
const specs = Object.fromEntries(REFERENCE_MODELS.map((m) => [m.name, m.spec]));
execFileSync("/usr/bin/python3", [join(import.meta.dirname, "torch_reference.py"), "init", out], { input: JSON.stringify(specs), stdio: ["pipe", "inherit", "inherit"] });
console.log(`wrote ${out}`);
