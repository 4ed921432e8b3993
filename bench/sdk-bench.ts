// `npm run bench:sdk`: the SDK's predict() (on its own HTTP/2 connection, and on grpc-js's as it can still
// be made to) against the raw generated grpc-js clients (unary, and the stream the SDK multiplexes over,
// driven directly) and the same stream spoken over node:http2 alone, from the same
// process, at concurrency 1 and 64, on the tiny model and the CNN; beside each, this client process's CPU per
// call. The clients take turns in an order that rotates round by round. Medians of --rounds rounds.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { credentials, Metadata } from "@grpc/grpc-js";
import { createClient, Tensor } from "@aiaas/sdk";
import { DataType, InferenceClient, type PredictRequest } from "@aiaas/sdk/gen";
import { encodeModel } from "../server/src/training/onnx/index.js";
import { buildMnistCnn, buildMnistLinear } from "../scripts/model-zoo.js";
import { seededRandom, uniformInit } from "../scripts/seeded-random.js";
import { http2StreamLoad, streamLoad, unaryLoad, type LoadResult } from "./load.js";
import { machine } from "./machine.js";
import { requestCodes } from "./stats.js";

// The servers this bench starts keep no state: it measures serving, not durable jobs.
process.env.AIAAS_STATE_DIR ??= "none";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "3" }, rounds: { type: "string", default: "3" } } });
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const random = seededRandom(5);

const work = await mkdtemp(join(tmpdir(), "aiaas-sdk-bench-"));
const repo = join(work, "models");
const models = {
  tiny: { bytes: encodeModel(buildMnistLinear(uniformInit(random, 7840, 784), uniformInit(random, 10, 784), "bench")), shape: [1, 784] },
  cnn: { bytes: encodeModel(buildMnistCnn()), shape: [1, 1, 28, 28] },
};
for (const [name, m] of Object.entries(models)) {
  await mkdir(join(repo, name, "1"), { recursive: true });
  await writeFile(join(repo, name, "1", "model.onnx"), m.bytes);
  await writeFile(join(repo, name, "config.json"), JSON.stringify({ max_batch_size: 64 }));
}
const server = spawn(process.execPath, ["--max-semi-space-size=32", "server/dist/bin/aiaas.js", "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu"], { stdio: ["ignore", "pipe", "inherit"] });
let httpPort = 0;
const address = await new Promise<string>((resolve) => {
  createInterface({ input: server.stdout! }).on("line", (line) => {
    const entry = JSON.parse(line) as { address?: string; httpPort?: number };
    if (entry.httpPort) httpPort = entry.httpPort;
    if (entry.address) resolve(entry.address);
  });
});

const raw = new InferenceClient(address, credentials.createInsecure());
const sdk = createClient({ address });
// Any channelOptions keep predict() on grpc-js's stream: the SDK as it was before its own HTTP/2 connection.
const sdkOverGrpcJs = createClient({ address, channelOptions: {} });
type Sample = LoadResult & { clientCpuUs: number };
const results = new Map<string, Sample[]>();
/** Runs a load and records it with this process's CPU per call (user + system, every thread). */
const record = async (name: string, load: () => Promise<LoadResult>): Promise<void> => {
  const before = process.cpuUsage();
  const r = await load();
  const used = process.cpuUsage(before);
  const sample = { ...r, clientCpuUs: (used.user + used.system) / Math.max(1, r.requests) };
  results.set(name, [...(results.get(name) ?? []), sample]);
  process.stderr.write(`  ${name.padEnd(28)} ${r.perSecond.toFixed(0).padStart(7)}/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  client ${sample.clientCpuUs.toFixed(1)} µs CPU/call${r.errors ? `  errors ${r.errors}` : ""}\n`);
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Each client runs 2 s unmeasured first: a JIT still compiling would be counted against whichever ran first.
const warm = async (load: () => Promise<LoadResult>): Promise<void> => void (await load());

try {
  for (let round = 0; round <= rounds; round++) {
    process.stderr.write(round === 0 ? "warm-up (not measured)\n" : `round ${round}/${rounds}\n`);
    for (const [name, m] of Object.entries(models)) {
      const pixels = Float32Array.from({ length: 784 }, () => random());
      const request: PredictRequest = {
        model: name, version: "", id: "", outputs: [], outputEncoding: 1, timeoutMs: 0,
        inputs: [{ name: "image", datatype: DataType.DATA_TYPE_FP32, shape: m.shape.map(BigInt), rawData: new Uint8Array(pixels.buffer), fp32Data: [], fp64Data: [], int32Data: [], int64Data: [], uint32Data: [], uint64Data: [], boolData: [] }],
      };
      const tensor = Tensor.float32(m.shape, pixels);
      for (const c of [1, 64]) {
        const clients: Array<[string, () => Promise<LoadResult>]> = [
          [`${name} raw unary c=${c}`, () => unaryLoad((done) => raw.predict(request, new Metadata(), { deadline: new Date(Date.now() + 30_000) }, (e) => done(e)), c, seconds)],
          [`${name} raw stream c=${c}`, () => streamLoad(raw, request, c, seconds)],
          [`${name} sdk predict c=${c}`, () => unaryLoad((done) => sdk.predict(name, { image: tensor }).then(() => done(null), done), c, seconds)],
          [`${name} node:http2 stream c=${c}`, () => http2StreamLoad(address, request, c, seconds)],
          [`${name} sdk over grpc-js c=${c}`, () => unaryLoad((done) => sdkOverGrpcJs.predict(name, { image: tensor }).then(() => done(null), done), c, seconds)],
        ];
        for (let i = 0; i < clients.length; i++) {
          const [label, load] = clients[(i + round) % clients.length]!;
          await (round === 0 ? warm(load) : record(label, load));
        }
      }
    }
  }
  const rate = (name: string): number => median(results.get(name)!.map((r) => r.perSecond));
  const p50 = (name: string): number => median(results.get(name)!.map((r) => r.p50Ms));
  const cpu = (name: string): number => median(results.get(name)!.map((r) => r.clientCpuUs));
  const lines = [`| client (median of ${rounds}, ${seconds}s each) | requests/s | p50 ms | client CPU µs per call |`, "|---|---:|---:|---:|"];
  for (const name of results.keys()) lines.push(`| ${name} | ${rate(name).toFixed(0)} | ${p50(name).toFixed(2)} | ${cpu(name).toFixed(1)} |`);
  lines.push("", "| ratio | value |", "|---|---:|");
  for (const model of Object.keys(models)) {
    lines.push(`| ${model}: sdk / raw at c=64 (target >= 3) | ${(rate(`${model} sdk predict c=64`) / rate(`${model} raw unary c=64`)).toFixed(2)} |`);
    lines.push(`| ${model}: sdk / raw at c=1 (target >= 1) | ${(rate(`${model} sdk predict c=1`) / rate(`${model} raw unary c=1`)).toFixed(2)} |`);
    lines.push(`| ${model}: sdk / node:http2 stream at c=64 (the SDK's own cost over the stream it rides) | ${(rate(`${model} sdk predict c=64`) / rate(`${model} node:http2 stream c=64`)).toFixed(2)} |`);
    lines.push(`| ${model}: SDK client CPU per call minus the node:http2 stream's, µs, c=64 | ${(cpu(`${model} sdk predict c=64`) - cpu(`${model} node:http2 stream c=64`)).toFixed(1)} |`);
    lines.push(`| ${model}: sdk / sdk over grpc-js at c=64 (its own HTTP/2 connection) | ${(rate(`${model} sdk predict c=64`) / rate(`${model} sdk over grpc-js c=64`)).toFixed(2)} |`);
    lines.push(`| ${model}: node:http2 stream / grpc-js raw stream at c=64 (a stream transport of the client's own) | ${(rate(`${model} node:http2 stream c=64`) / rate(`${model} raw stream c=64`)).toFixed(2)} |`);
  }
  console.log(lines.join("\n"));
  await mkdir("bench/results", { recursive: true });
  // Failures by code from the server's own metrics: any the clients' deadlines do not explain fail the run.
  const codes = await requestCodes(httpPort);
  process.stderr.write(`server: requests by code ${JSON.stringify(codes.byCode)}\n`);
  await writeFile("bench/results/sdk.json", JSON.stringify({ date: new Date().toISOString(), machine: machine(), seconds, rounds, table: lines.join("\n"), results: Object.fromEntries(results), codes }, null, 2));
  if (Object.keys(codes.unexpected).length > 0) {
    process.stderr.write(`FAILED: the server answered requests with ${JSON.stringify(codes.unexpected)}; the figures above include failed calls\n`);
    process.exitCode = 1;
  }
} finally {
  raw.close();
  sdk.close();
  sdkOverGrpcJs.close();
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await rm(work, { recursive: true, force: true });
}
