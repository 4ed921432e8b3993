// `npm run bench:train-rpc`: a Train job over gRPC against the engine in-process (same model, data, batch and
// thread count, in the same run), and Predict throughput while a job trains against idle. Medians of rounds;
// every round's figures go to bench/results/train-rpc-<time>.json with the machine's description.
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { startServer } from "@aiaas/server";
import { createClient, Tensor, type AiaasClient, type TrainChunk } from "@aiaas/sdk";
import { buildArchitecture } from "../server/src/training/layers/build-architecture.js";
import { buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner } from "../server/src/training/engine/train-runner.js";
import { SEED_CNN } from "../scripts/reference-models.js";
import { loadMnist } from "../scripts/mnist-data.js";
import { machine } from "./machine.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROWS = 4096;
const EPOCHS = 2;
const BATCH = 64;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const { train, test } = loadMnist();
const images = train.images.subarray(0, ROWS * 784);
const labels = BigInt64Array.from(train.labels.subarray(0, ROWS), BigInt);

async function inProcess(): Promise<number> {
  const program = buildTrainProgram(buildArchitecture(SEED_CNN, { seed: 4 }), { loss: { kind: "cross-entropy", output: "logits" }, optimizer: { type: "adam" } });
  const runner = await createTrainRunner(program, { threads: 1 });
  const started = performance.now();
  for (let e = 0; e < EPOCHS; e++) {
    for (let s = 0; s < ROWS; s += BATCH) {
      await runner.step(
        {
          image: { type: "float32", dims: [BATCH, 1, 28, 28], data: images.slice(s * 784, (s + BATCH) * 784) },
          labels: { type: "int64", dims: [BATCH], data: labels.slice(s, s + BATCH) },
        },
        1e-3,
      );
    }
  }
  const rate = (EPOCHS * ROWS) / ((performance.now() - started) / 1000);
  await runner.close();
  return rate;
}

function* chunks(): Generator<TrainChunk> {
  for (let s = 0; s < ROWS; s += 1024) {
    yield { inputs: { image: Tensor.float32([1024, 1, 28, 28], images.subarray(s * 784, (s + 1024) * 784)) }, labels: Tensor.int64([1024], labels.subarray(s, s + 1024)) };
  }
}

const spec = (model: string, epochs = EPOCHS) => ({
  model,
  architecture: { input: { name: "image", dims: [1, 28, 28] }, layers: SEED_CNN.layers as never },
  batchSize: BATCH,
  epochs,
  seed: 4,
});

async function overGrpc(client: AiaasClient, model: string): Promise<number> {
  for await (const e of client.train(spec(model), chunks())) if (e.type === "completed") return (EPOCHS * ROWS) / e.metrics.seconds;
  throw new Error("the job did not complete");
}

async function predictRate(client: AiaasClient, seconds: number): Promise<number> {
  const x = Tensor.float32([1, 1, 28, 28], test.images.subarray(0, 784));
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        await client.predict("mnist-cnn", { image: x });
        done++;
      }
    }),
  );
  return done / seconds;
}

const repo = await mkdtemp(join(tmpdir(), "aiaas-bench-train-"));
await cp(new URL("../models/mnist-cnn", import.meta.url).pathname, join(repo, "mnist-cnn"), { recursive: true });
const server = await startServer({ modelsDir: repo, host: "127.0.0.1", port: 0, providers: ["cpu"], logger: pino({ level: "warn" }) });
const client = createClient({ address: server.address });
try {
  const engine: number[] = [];
  const grpc: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    engine.push(await inProcess());
    grpc.push(await overGrpc(client, `bench-${r}`));
  }
  const idle: number[] = [];
  const busy: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    idle.push(await predictRate(client, 3));
    // A long job, cancelled once the measurement is done.
    let jobId = "";
    const job = (async () => {
      for await (const e of client.train({ ...spec(`busy-${r}`, 50), metricsIntervalSteps: 1 }, chunks())) if (!jobId && e.type === "metrics") jobId = e.jobId;
    })().catch(() => undefined);
    while (!jobId) await new Promise((res) => setTimeout(res, 50));
    busy.push(await predictRate(client, 3));
    await client.jobs.cancel(jobId);
    await job;
  }
  console.log(`seed CNN, ${ROWS} MNIST rows x ${EPOCHS} epochs, batch ${BATCH}, Adam, 1 training thread; ${ROUNDS} rounds, medians`);
  console.log("| measurement | value |");
  console.log("|---|---:|");
  console.log(`| engine in-process, examples/s | ${median(engine).toFixed(0)} |`);
  console.log(`| Train job over gRPC (upload excluded), examples/s | ${median(grpc).toFixed(0)} |`);
  console.log(`| gRPC job / in-process | ${(median(grpc) / median(engine)).toFixed(2)} |`);
  console.log(`| mnist-cnn Predict (SDK, 16 in flight, 1 row) idle, per s | ${median(idle).toFixed(0)} |`);
  console.log(`| the same while a job trains, per s | ${median(busy).toFixed(0)} |`);
  console.log(`| while training / idle | ${(median(busy) / median(idle)).toFixed(2)} |`);
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  const out = new URL(`./results/train-rpc-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  const raw = { machine: machine(), rounds: ROUNDS, rows: ROWS, epochs: EPOCHS, batch: BATCH, examplesPerSecond: { engine, grpc }, predictPerSecond: { idle, busy } };
  await writeFile(out, `${JSON.stringify(raw, null, 1)}\n`);
  console.log(`raw results: ${out.pathname}`);
} finally {
  client.close();
  await server.shutdown();
  await rm(repo, { recursive: true, force: true });
}
