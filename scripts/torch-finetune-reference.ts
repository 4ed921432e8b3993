// PyTorch's side of the fine-tuning parity check: for each exported fixture, the same task, the same initial
// weights (the module the fixture was exported from) and the server's own batch order (its seeded per-epoch
// permutation), trained with torch.optim.Adam; writes held-out accuracy and loss per epoch to
// test/fixtures/torch-finetune/<name>.json. Developer tool (python3-torch).
// Run: node --import tsx scripts/torch-finetune-reference.ts [name …]
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { permutation } from "../server/src/training/jobs/job-batches.js";
import { writeBundle, type BundleTensor } from "../server/src/training/tensor-bundle.js";
import { FINE_TUNE, FINE_TUNE_INPUTS, fineTuneTask } from "./finetune-data.js";

const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(FINE_TUNE_INPUTS);
const work = mkdtempSync(join(tmpdir(), "aiaas-finetune-"));
for (const name of names) {
  const task = fineTuneTask(name);
  const tensor = (x: Float32Array | BigInt64Array, count: number): BundleTensor =>
    x instanceof BigInt64Array ? { type: "int64", dims: [count, ...task.dims], data: x } : { type: "float32", dims: [count, ...task.dims], data: x };
  const orders = new BigInt64Array(FINE_TUNE.epochs * task.train.count);
  for (let e = 0; e < FINE_TUNE.epochs; e++) orders.set(Array.from(permutation(task.train.count, FINE_TUNE.seed, 1000 + e), BigInt), e * task.train.count);
  const tensors = new Map<string, BundleTensor>([
    ["train.x", tensor(task.train.x, task.train.count)],
    ["train.y", { type: "int64", dims: [task.train.count], data: task.train.y }],
    ["test.x", tensor(task.heldOut.x, task.heldOut.count)],
    ["test.y", { type: "int64", dims: [task.heldOut.count], data: task.heldOut.y }],
    ["orders", { type: "int64", dims: [FINE_TUNE.epochs, task.train.count], data: orders }],
  ]);
  const input = join(work, `${name}.bin`);
  writeBundle(input, { meta: { name, ...FINE_TUNE }, tensors });
  const out = join(import.meta.dirname, "..", "test", "fixtures", "torch-finetune", `${name}.json`);
  execFileSync("/usr/bin/python3", [join(import.meta.dirname, "torch_export_fixtures.py"), "--finetune", input, out], { stdio: "inherit" });
  console.log(`wrote ${out}`);
}
