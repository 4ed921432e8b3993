// `npm run bench:train`: train-step examples/s of the seed CNN at batch 64 of MNIST digits, the engine
// (train-step graph in an ORT session on a worker thread) against PyTorch (Debian's python3-torch; skipped when
// absent), same initial weights and same batch on both sides, alternating round by round, medians of ≥ 5 rounds after a warm-up.
// PyTorch runs in its own process per configuration (VARIANTS), its threads fixed by OMP/OPENBLAS/MKL_NUM_THREADS:
// as installed; with glibc's malloc tuned to reuse freed intermediates (MALLOC_TUNED); with OpenBLAS
// single-threaded under PyTorch's OpenMP threads; with the best BLAS kernel the CPU's flags allow
// (OPENBLAS_CORETYPE). The engine is compared with the fastest. Writes the raw results to
// bench/results/train-bench-<time>.json.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner, type TrainRunner } from "../server/src/training/engine/train-runner.js";
import { writeBundle, type BundleTensor } from "../server/src/training/tensor-bundle.js";
import { SEED_CNN } from "../scripts/reference-models.js";
import { loadMnist } from "../scripts/mnist-data.js";
import { machine } from "./machine.js";

const ROUNDS = Math.max(5, Number(process.env.BENCH_ROUNDS ?? 5));
const STEPS = Number(process.env.BENCH_STEPS ?? 40);
const BATCH = 64;
const PYTHON = "/usr/bin/python3";

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The best OpenBLAS kernel this CPU's flags allow, as OPENBLAS_CORETYPE names it. */
function bestCore(): string | undefined {
  const flags = (/^flags\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").split(" ");
  if (flags.includes("avx512f") && flags.includes("avx512bw")) return "SkylakeX";
  if (flags.includes("avx2")) return "Haswell";
  return undefined;
}

/** One PyTorch configuration in its own process: a "round" line answers with the examples/s of STEPS steps. */
class TorchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];
  info: { torch: string; threads: number; blas: { libraries: string[]; core?: string; threads?: number }; parallel_info: string } | undefined;

  constructor(bundle: string, env: Record<string, string>) {
    this.child = spawn(PYTHON, [new URL("../scripts/torch_reference.py", import.meta.url).pathname, "bench", bundle, String(STEPS)], {
      env: { ...process.env, ...env },
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on("line", (line) => this.waiting.shift()?.(line));
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.child.once("exit", (code) => reject(new Error(`PyTorch exited with ${code}`)));
      this.waiting.push((line) => resolve(JSON.parse(line) as Record<string, unknown>));
    });
  }

  async start(): Promise<this> {
    this.info = (await this.next()) as TorchProcess["info"];
    return this;
  }

  async round(): Promise<{ rate: number; faults: number }> {
    this.child.stdin.write("round\n");
    const answer = await this.next();
    return { rate: answer.rate as number, faults: answer.minor_faults_per_step as number };
  }

  async profile(): Promise<unknown> {
    this.child.stdin.write("profile\n");
    return (await this.next()).profile;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** One engine round: STEPS train steps cycling through the batches (fresh copies: a job's are transferred too). */
async function engineRound(runner: TrainRunner, x: Float32Array, y: BigInt64Array): Promise<number> {
  const started = performance.now();
  for (let s = 0; s < STEPS; s++) {
    const k = s % (y.length / BATCH);
    const image = x.slice(k * BATCH * 784, (k + 1) * BATCH * 784);
    await runner.step({ image: { type: "float32", dims: [BATCH, 1, 28, 28], data: image }, labels: { type: "int64", dims: [BATCH], data: y.slice(k * BATCH, (k + 1) * BATCH) } }, 1e-3);
  }
  return (STEPS * BATCH) / ((performance.now() - started) / 1000);
}

interface Row {
  threads: number;
  engine: number[];
  torch: { name: string; core: string | undefined; env: Record<string, string>; rates: number[]; faultsPerStep: number[]; info: unknown; profile: unknown }[];
}

/** glibc's malloc tuned so PyTorch's freed intermediates are reused: by default every block over 128 KiB
 * (up to a threshold that rises only with the largest block freed so far) is a fresh mmap, each step's
 * activations and gradients come back as kernel-zeroed pages, and a step takes thousands of page faults. */
const MALLOC_TUNED = { MALLOC_MMAP_THRESHOLD_: String(64 << 20), MALLOC_TRIM_THRESHOLD_: String(128 << 20) };

/** The PyTorch configurations, each a process per thread count: as installed; malloc tuned; then, from two
 * threads on, also OpenBLAS single-threaded under PyTorch's own OpenMP threads (Debian's pthread OpenBLAS
 * otherwise starts its own pool beside OpenMP's: four busy threads on two cores, and the dense layers' matrix
 * products run 3x slower than on one thread); and, when OpenBLAS detects a lesser kernel than the CPU's flags
 * allow, the best of those settings with that kernel. */
const VARIANTS = ["as installed", "malloc tuned", "malloc tuned, BLAS 1 thread", "malloc tuned, best kernel"] as const;

function variantEnv(name: (typeof VARIANTS)[number], threads: number, best: string | undefined): Record<string, string> | undefined {
  const env = { OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const blasOne = threads > 1 ? { OPENBLAS_NUM_THREADS: "1", MKL_NUM_THREADS: "1" } : {};
  if (name === "as installed") return env;
  if (name === "malloc tuned") return { ...env, ...MALLOC_TUNED };
  if (name === "malloc tuned, BLAS 1 thread") return threads > 1 ? { ...env, ...MALLOC_TUNED, ...blasOne } : undefined;
  return best ? { ...env, ...MALLOC_TUNED, ...blasOne, OPENBLAS_CORETYPE: best } : undefined;
}

async function torchVariants(threads: number, bundle: string): Promise<{ name: string; env: Record<string, string>; process: TorchProcess }[]> {
  if (!existsSync(PYTHON)) return [];
  const probe = await new TorchProcess(bundle, variantEnv("as installed", threads, undefined)!).start();
  const detected = probe.info?.blas.core;
  const best = bestCore();
  const better = best && detected && detected.toLowerCase() !== best.toLowerCase() ? best : undefined;
  const variants = [{ name: VARIANTS[0] as string, env: variantEnv("as installed", threads, undefined)!, process: probe }];
  for (const name of VARIANTS.slice(1)) {
    const env = variantEnv(name, threads, better);
    if (env) variants.push({ name, env, process: await new TorchProcess(bundle, env).start() });
  }
  return variants;
}

async function measure(threads: number, bundle: string, x: Float32Array, y: BigInt64Array, program: ReturnType<typeof buildTrainProgram>): Promise<Row> {
  const variants = await torchVariants(threads, bundle);
  const runner = await createTrainRunner(program, { threads });
  const row: Row = {
    threads,
    engine: [],
    torch: variants.map((v) => ({ name: v.name, env: v.env, core: v.process.info?.blas.core, rates: [], faultsPerStep: [], info: v.process.info, profile: undefined })),
  };
  try {
    // Round 0 warms every side up and is not counted; then the sides alternate, round by round.
    for (let r = 0; r <= ROUNDS; r++) {
      const e = await engineRound(runner, x, y);
      const t = [];
      for (const v of variants) t.push(await v.process.round());
      if (r === 0) continue;
      row.engine.push(e);
      t.forEach((answer, i) => {
        row.torch[i]!.rates.push(answer.rate);
        row.torch[i]!.faultsPerStep.push(answer.faults);
      });
    }
    for (const [i, v] of variants.entries()) row.torch[i]!.profile = await v.process.profile();
  } finally {
    await runner.close();
    for (const v of variants) v.process.close();
  }
  return row;
}

const program = buildTrainProgram(buildArchitecture(SEED_CNN, { seed: 1 }), { loss: { kind: "cross-entropy", output: "logits" }, optimizer: { type: "adam" } });
// Real digits in 10 batches that the steps cycle through, as a job does: uniform noise, or one batch repeated
// until the model fits it, made PyTorch's ReLU and pooling gradients 3-4x slower than on training data
// (measured while writing this bench), which would be unfair to it.
const BATCHES = 10;
const { train } = loadMnist();
const x = train.images.slice(0, BATCHES * BATCH * 784);
const y = BigInt64Array.from(train.labels.subarray(0, BATCHES * BATCH), BigInt);
// The same initial weights and the same batch on both sides.
const tensors = new Map<string, BundleTensor>([...program.initialParams].map(([name, t]) => [`param:${name}`, { type: "float32", dims: t.dims, data: t.data as Float32Array }]));
tensors.set("x", { type: "float32", dims: [BATCHES * BATCH, 1, 28, 28], data: x });
tensors.set("y", { type: "int64", dims: [BATCHES * BATCH], data: y });
const bundle = join(mkdtempSync(join(tmpdir(), "aiaas-train-bench-")), "bench.bin");
writeBundle(bundle, { meta: { spec: SEED_CNN }, tensors });

const rows: Row[] = [];
for (const threads of [1, 2]) rows.push(await measure(threads, bundle, x, y, program));

console.log(`seed CNN train step, batches of ${BATCH} MNIST digits (${BATCHES} in turn), Adam, same initial weights and batches on both sides; ${ROUNDS} rounds of ${STEPS} steps after a warm-up round, alternating; examples/s, medians (min–max); PyTorch's minor page faults per step in brackets`);
const names = VARIANTS.filter((v) => rows.some((row) => row.torch.some((t) => t.name === v)));
console.log(`| threads | engine | ${names.map((n) => `PyTorch, ${n}`).join(" | ")} | engine / fastest PyTorch |`);
console.log(`|---:|---:|${names.map(() => "---:|").join("")}---:|`);
const cell = (rates: readonly number[] | undefined): string =>
  rates && rates.length ? `${median(rates).toFixed(0)} (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})` : "n/a";
for (const row of rows) {
  const fastest = Math.max(0, ...row.torch.map((t) => median(t.rates)));
  const torchCells = names.map((n) => row.torch.find((t) => t.name === n)).map((t) => (t ? `${cell(t.rates)} [${median(t.faultsPerStep).toFixed(0)}]` : "—"));
  console.log(`| ${row.threads} | ${cell(row.engine)} | ${torchCells.join(" | ")} | ${fastest ? (median(row.engine) / fastest).toFixed(2) : "n/a"} |`);
}
for (const row of rows) {
  for (const t of row.torch) {
    const top = (t.profile as { op: string; self_ms_per_step: number }[] | undefined) ?? [];
    console.log(`PyTorch ${t.name} (${t.core}), ${row.threads} thread(s), top ops by self CPU ms per step: ${top.slice(0, 5).map((p) => `${p.op} ${p.self_ms_per_step.toFixed(2)}`).join(", ")}`);
  }
}
const info = rows[0]?.torch[0]?.info as { torch?: string; blas?: { libraries: string[] } } | undefined;
if (info) console.log(`PyTorch ${info.torch}, BLAS ${info.blas?.libraries.join(", ")}`);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const out = new URL(`./results/train-bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
writeFileSync(out, `${JSON.stringify({ machine: machine(), rounds: ROUNDS, steps: STEPS, batch: BATCH, rows }, null, 1)}\n`);
console.log(`raw results: ${out.pathname}`);
