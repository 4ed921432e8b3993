// `npm run bench:train`: train-step examples/s of the seed CNN at batch 64, the engine (train-step graph in
// an ORT session on a worker thread, parameters double-buffered) against PyTorch with the same thread count,
// measured in the same run, medians of several rounds. PyTorch is Debian's python3-torch (skipped when absent);
// install libopenblas0-pthread so it uses OpenBLAS, the honest peer.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner } from "../server/src/training/engine/train-runner.js";
import { SEED_CNN } from "../scripts/reference-models.js";
import { seededRandom } from "../scripts/seeded-random.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STEPS = Number(process.env.BENCH_STEPS ?? 40);
const BATCH = 64;
const PYTHON = "/usr/bin/python3";

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function engineRates(threads: number): Promise<number[]> {
  const program = buildTrainProgram(buildArchitecture(SEED_CNN, { seed: 1 }), {
    loss: { kind: "cross-entropy", output: "logits" },
    optimizer: { type: "adam" },
  });
  const runner = await createTrainRunner(program, { threads });
  const random = seededRandom(5);
  const images = Float32Array.from({ length: BATCH * 784 }, () => random());
  const labels = BigInt64Array.from({ length: BATCH }, () => BigInt(Math.floor(random() * 10)));
  const rates: number[] = [];
  try {
    for (let r = 0; r <= ROUNDS; r++) {
      const started = performance.now();
      for (let s = 0; s < STEPS; s++) {
        // Fresh copies each step, as a job feeding batches would (the buffers are transferred to the thread).
        await runner.step(
          { image: { type: "float32", dims: [BATCH, 1, 28, 28], data: images.slice() }, labels: { type: "int64", dims: [BATCH], data: labels.slice() } },
          1e-3,
        );
      }
      if (r > 0) rates.push((STEPS * BATCH) / ((performance.now() - started) / 1000));
    }
  } finally {
    await runner.close();
  }
  return rates;
}

function torchRates(threads: number): { rates: number[]; version: string } | undefined {
  if (!existsSync(PYTHON)) return undefined;
  try {
    const out = execFileSync(PYTHON, [new URL("../scripts/torch_reference.py", import.meta.url).pathname, "bench", String(threads), String(STEPS), String(ROUNDS)], {
      input: JSON.stringify(SEED_CNN),
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    });
    const parsed = JSON.parse(out.trim().split("\n").pop()!) as { rates: number[]; torch: string };
    return { rates: parsed.rates, version: parsed.torch };
  } catch (error) {
    console.error(`PyTorch not measured: ${String(error).split("\n")[0]}`);
    return undefined;
  }
}

console.log(`seed CNN train step, batch ${BATCH}, Adam; ${ROUNDS} rounds of ${STEPS} steps after a warm-up round; medians`);
console.log("| threads | aiaas engine examples/s | PyTorch examples/s | engine / PyTorch |");
console.log("|---:|---:|---:|---:|");
let version = "";
for (const threads of [1, 2]) {
  // Alternate the two so drift on a shared machine hits both alike.
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 2; i++) {
    ours.push(...(await engineRates(threads)));
    const t = torchRates(threads);
    if (t) {
      theirs.push(...t.rates);
      version = t.version;
    }
  }
  const o = median(ours);
  const p = theirs.length ? median(theirs) : undefined;
  console.log(`| ${threads} | ${o.toFixed(0)} | ${p ? p.toFixed(0) : "n/a"} | ${p ? (o / p).toFixed(2) : "n/a"} |`);
}
if (version) console.log(`PyTorch ${version} (${PYTHON})`);
