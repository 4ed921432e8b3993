// `npm run bench:ab -- --base DIR`: this tree's server against another build of it (DIR: a checkout whose
// server/dist is built, e.g. `git worktree add /tmp/base main && (cd /tmp/base && npm ci && npm run build)`),
// both running at once on the same models, measured point by point in alternating order so the machine's
// noise falls on both alike. Reports requests/s and the server's own CPU time per request (user + system, from
// /proc), which moves far less than wall time on a shared machine; medians of --rounds rounds. `--only
// stream,c=1` keeps the points whose names contain one of the words.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { measureCpu } from "./cpu-table.js";
import { median } from "./stats.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { startChild } from "./start-child.js";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "5" },
    // Only the points whose names contain one of these comma-separated words ("stream,c=1").
    only: { type: "string", default: "" },
  },
});
if (!args.base) throw new Error("--base DIR: a built checkout to compare against");
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const work = await mkdtemp(join(tmpdir(), "aiaas-ab-"));
const { repo } = await writeServeFixtures(work);


const serve = (bin: string) =>
  // With the operations port, as `aiaas serve` runs by default: the metrics are recorded.
  startChild(["--max-semi-space-size=32", bin, "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu"], (e) => e.address as string | undefined);
const builds = {
  base: await serve(resolve(args.base, "server/dist/bin/aiaas.js")),
  new: await serve(resolve("server/dist/bin/aiaas.js")),
};

type Sample = { perSecond: number; cpuUsPerRequest: number; p50Ms: number };
// [path, frame, in flight, messages per h2load request]
const points: Record<string, [string, string, number, number]> = {
  "cnn unary c=1": ["/aiaas.v1.Inference/Predict", "cnn.frame", 1, 1],
  "tiny unary c=1": ["/aiaas.v1.Inference/Predict", "tiny.frame", 1, 1],
  "cnn unary c=256": ["/aiaas.v1.Inference/Predict", "cnn.frame", 256, 1],
  "cnn OIP ModelInfer c=256": ["/inference.GRPCInferenceService/ModelInfer", "cnn-oip.frame", 256, 1],
  "cnn stream 4x64": ["/aiaas.v1.Inference/PredictStream", "cnn.x64.frame", 4, 64],
  "tiny unary c=256": ["/aiaas.v1.Inference/Predict", "tiny.frame", 256, 1],
  "tiny stream 4x64": ["/aiaas.v1.Inference/PredictStream", "tiny.x64.frame", 4, 64],
};
const only = args.only!.split(",").filter(Boolean);
for (const name of Object.keys(points)) if (only.length && !only.some((word) => name.toLowerCase().includes(word.toLowerCase()))) delete points[name];
const samples = new Map<string, Sample[]>();

try {
  for (let round = 0; round < rounds; round++) {
    process.stderr.write(`round ${round + 1}/${rounds}, ${seconds}s per point\n`);
    for (const [point, [path, frame, inflight, messages]] of Object.entries(points)) {
      // Alternate which build goes first, so a trend in the machine's load does not favour one.
      const order = round % 2 === 0 ? (["base", "new"] as const) : (["new", "base"] as const);
      for (const build of order) {
        const { child, value } = builds[build];
        const m = await measureCpu({ pid: child.pid!, address: value }, path, join(work, frame), inflight, messages, seconds, join(work, "h2load.log"));
        const sample = { perSecond: m.load.perSecond * messages, cpuUsPerRequest: (m.cpu.total / Math.max(1, m.requests)) * 1e6, p50Ms: m.load.p50Ms };
        samples.set(`${build} ${point}`, [...(samples.get(`${build} ${point}`) ?? []), sample]);
        process.stderr.write(`  ${build.padEnd(5)} ${point.padEnd(26)} ${sample.perSecond.toFixed(0).padStart(7)}/s  ${sample.cpuUsPerRequest.toFixed(1).padStart(6)} µs CPU/req  p50 ${sample.p50Ms.toFixed(3)} ms\n`);
      }
    }
  }
  const lines = [`| point (median of ${rounds}, ${seconds}s each) | base req/s | new req/s | new / base | base CPU µs/req | new CPU µs/req | new / base CPU | base p50 ms | new p50 ms |`, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"];
  for (const point of Object.keys(points)) {
    const b = samples.get(`base ${point}`)!;
    const n = samples.get(`new ${point}`)!;
    const [br, nr] = [median(b.map((s) => s.perSecond)), median(n.map((s) => s.perSecond))];
    const [bc, nc] = [median(b.map((s) => s.cpuUsPerRequest)), median(n.map((s) => s.cpuUsPerRequest))];
    const [bp, np] = [median(b.map((s) => s.p50Ms)), median(n.map((s) => s.p50Ms))];
    lines.push(`| ${point} | ${br.toFixed(0)} | ${nr.toFixed(0)} | ${(nr / br).toFixed(2)} | ${bc.toFixed(1)} | ${nc.toFixed(1)} | ${(nc / bc).toFixed(2)} | ${bp.toFixed(3)} | ${np.toFixed(3)} |`);
  }
  console.log(lines.join("\n"));
} finally {
  for (const b of Object.values(builds)) b.child.kill("SIGTERM");
  await rm(work, { recursive: true, force: true });
}
