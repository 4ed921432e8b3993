// `npm run bench:heap`: bytes the JS heap allocates per request (objects already collected included), for the
// server (unary Predict, PredictStream message, ModelInfer; cnn, h2load 256 in flight) and for a grpc-js
// echo server on the same bytes, from V8's sampling heap profiler (bench/heap-sampler.mjs). Unlike CPU time
// it does not move with the machine's load. `--build DIR` measures another built checkout.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ECHO_ARGV, echoAddress, serverAddress, serverArgv } from "./bench-targets.js";
import { h2load, h2loadCount } from "./load.js";
import { machine } from "./machine.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { exitOf, startChild } from "./start-child.js";

const { values: args } = parseArgs({ options: { build: { type: "string", default: "." }, requests: { type: "string", default: "20000" } } });
const requests = Number(args.requests);
const work = await mkdtemp(join(tmpdir(), "aiaas-heap-bench-"));
await writeServeFixtures(work);
const sampler = resolve("bench/heap-sampler.mjs");

interface ProfileNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: ProfileNode[] }

/** Bytes per request in all, and the functions that allocated most. */
function summarize(root: ProfileNode, count: number): { bytesPerRequest: number; top: Array<[string, number]> } {
  const byFunction = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode): void => {
    const f = node.callFrame;
    const name = `${f.functionName || "(anonymous)"} ${f.url.replace(/.*node_modules\//, "").replace(/^file:\/\/.*?\/(server|sdk)\//, "$1/")}:${f.lineNumber + 1}`;
    total += node.selfSize;
    if (node.selfSize) byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(root);
  const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]): [string, number] => [k, Math.round(v / count)]);
  return { bytesPerRequest: Math.round(total / count), top };
}

/** Starts a target with the sampler, warms it up, samples `requests` requests, and reads the profile. */
async function measure(argv: string[], pick: (e: Record<string, unknown>) => string | undefined, path: string, frame: string, inflight: number, messages: number) {
  const out = join(work, "heap.json");
  await rm(out, { force: true });
  process.env.AIAAS_HEAP_PROFILE_OUT = out;
  const target = await startChild(["--max-semi-space-size=32", "--import", sampler, ...argv], pick);
  try {
    const url = `http://${target.value}${path}`;
    await h2load(url, join(work, frame), inflight, 4, join(work, "h2load.log"), false);
    target.child.kill("SIGUSR2");
    await new Promise((r) => setTimeout(r, 300));
    const { failed } = await h2loadCount(url, join(work, frame), inflight, Math.ceil(requests / messages), join(work, "h2load.log"));
    target.child.kill("SIGUSR2");
    for (let i = 0; i < 200 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    const profile = JSON.parse(await readFile(out, "utf8")) as { head: ProfileNode };
    return { failed, ...summarize(profile.head, Math.ceil(requests / messages) * messages) };
  } finally {
    target.child.kill("SIGTERM");
    await exitOf(target.child);
  }
}

const server = serverArgv(args.build!, work);
const echo = [...ECHO_ARGV];
const points = {
  "cnn Predict unary c=256": () => measure(server, serverAddress, "/aiaas.v1.Inference/Predict", "cnn.frame", 256, 1),
  "cnn PredictStream 4x64 (per message)": () => measure(server, serverAddress, "/aiaas.v1.Inference/PredictStream", "cnn.x64.frame", 4, 64),
  "cnn ModelInfer c=256": () => measure(server, serverAddress, "/inference.GRPCInferenceService/ModelInfer", "cnn-oip.frame", 256, 1),
  "echo unary c=256": () => measure(echo, echoAddress, "/bench.Echo/Echo", "cnn.frame", 256, 1),
  "echo stream 4x64 (per message)": () => measure(echo, echoAddress, "/bench.Echo/EchoStream", "cnn.x64.frame", 4, 64),
};
try {
  const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
  const lines = [`| point (${requests} requests sampled) | bytes allocated per request | top allocators, bytes per request |`, "|---|---:|---|"];
  for (const [name, run] of Object.entries(points)) {
    const r = (results[name] = await run());
    process.stderr.write(`  ${name.padEnd(40)} ${r.bytesPerRequest} bytes/request${r.failed ? `  (${r.failed} failed)` : ""}\n`);
    lines.push(`| ${name} | ${r.bytesPerRequest} | ${r.top.slice(0, 5).map(([k, v]) => `${k.split(" ")[0]} ${v}`).join(", ")} |`);
  }
  console.log(lines.join("\n"));
  await mkdir("bench/results", { recursive: true });
  await writeFile("bench/results/heap.json", JSON.stringify({ date: new Date().toISOString(), machine: machine(), build: args.build === "." ? "this tree" : resolve(args.build!), requests, results }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
