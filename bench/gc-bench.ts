// `npm run bench:gc`: what V8's garbage collector costs per request, for the server and for a grpc-js echo
// server on the same bytes (h2load, 256 in flight or 4 streams × 64). The target runs with --trace-gc-nvp;
// over a measured run, every scavenge's main-thread pause and its helper threads' parallel work, and every
// mark-compact's pause, are summed and divided by the requests answered, beside the bytes a scavenge found
// still alive and the bytes it promoted, and the bytes allocated and scavenges per request (with as many
// calls in flight, a scavenge finds about as much alive whenever it comes, so how often it comes sets the
// cost). Like the heap profile, and unlike CPU time, these move little with
// the machine's load. `--build DIR` measures another built checkout; `--rounds N` (default 3) takes medians.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ECHO_ARGV, echoAddress, serverAddress, serverArgv } from "./bench-targets.js";
import { h2load } from "./load.js";
import { machine } from "./machine.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { median } from "./stats.js";

const { values: args } = parseArgs({
  options: { build: { type: "string", default: "." }, seconds: { type: "string", default: "5" }, rounds: { type: "string", default: "3" }, out: { type: "string", default: "bench/results/gc.json" } },
});
const seconds = Number(args.seconds);
const work = await mkdtemp(join(tmpdir(), "aiaas-gc-bench-"));
await writeServeFixtures(work);

/** Per request (per message on a stream): µs of GC work, and bytes that survived or were promoted. */
interface GcSample {
  readonly scavengeMainUs: number;
  readonly scavengeHelpersUs: number;
  readonly markCompactMainUs: number;
  readonly survivedBytes: number;
  readonly promotedBytes: number;
  /** JS heap bytes allocated before each scavenge (the sum of their `allocated`). */
  readonly allocatedBytes: number;
  readonly scavengesPer1000: number;
  readonly perSecond: number;
}

/** `key=value` of one --trace-gc-nvp line. */
function field(line: string, key: string): number {
  const value = new RegExp(` ${key.replace(/\./g, "\\.")}=([\\d.]+)`).exec(line)?.[1];
  return value === undefined ? 0 : Number(value);
}

/** Starts a target under --trace-gc-nvp; `lines` collects its GC lines while `recording` is on. */
async function startTraced(argv: string[], pick: (e: Record<string, unknown>) => string | undefined) {
  const child = spawn(process.execPath, ["--trace-gc-nvp", "--max-semi-space-size=32", ...argv], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, AIAAS_STATE_DIR: "none" } });
  const state = { recording: false, lines: [] as string[] };
  const address = await new Promise<string>((done, fail) => {
    child.once("exit", (code) => fail(new Error(`${argv.join(" ")} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("{")) {
        const value = pick(JSON.parse(line) as Record<string, unknown>);
        if (value) done(value);
      } else if (state.recording && / gc=(s|mc|ms) /.test(line)) state.lines.push(line);
    });
  });
  return { child, address, state };
}

async function measure(argv: string[], pick: (e: Record<string, unknown>) => string | undefined, path: string, frame: string, inflight: number, messages: number): Promise<GcSample> {
  const target = await startTraced(argv, pick);
  try {
    const url = `http://${target.address}${path}`;
    const log = join(work, "h2load.log");
    await h2load(url, join(work, frame), inflight, 5, log, false);
    target.state.recording = true;
    const load = await h2load(url, join(work, frame), inflight, seconds, log, false);
    target.state.recording = false;
    const requests = Math.max(1, (load.succeeded ?? 0) * messages);
    const scavenges = target.state.lines.filter((l) => / gc=s /.test(l));
    const marks = target.state.lines.filter((l) => / gc=m[cs] /.test(l));
    const sum = (lines: string[], key: string): number => lines.reduce((total, l) => total + field(l, key), 0);
    return {
      scavengeMainUs: (sum(scavenges, "pause") * 1000) / requests,
      scavengeHelpersUs: (sum(scavenges, "background.scavenge.parallel") * 1000) / requests,
      markCompactMainUs: (sum(marks, "pause") * 1000) / requests,
      survivedBytes: sum(scavenges, "new_space_survived") / requests,
      promotedBytes: sum(scavenges, "promoted") / requests,
      // What drives how often scavenges come. Summed over scavenges only: a mark-compact's `allocated` can
      // come out as a wrapped-around 64-bit number when the heap shrank, and mark-compacts are rare here.
      allocatedBytes: sum(scavenges, "allocated") / requests,
      scavengesPer1000: (scavenges.length * 1000) / requests,
      perSecond: load.perSecond * messages,
    };
  } finally {
    target.child.kill("SIGTERM");
    await new Promise((done) => (target.child.exitCode !== null ? done(undefined) : target.child.once("exit", done)));
  }
}

const server = serverArgv(args.build!, work);
const echo = [...ECHO_ARGV];
const points: Record<string, () => Promise<GcSample>> = {
  "cnn Predict unary c=256": () => measure(server, serverAddress, "/aiaas.v1.Inference/Predict", "cnn.frame", 256, 1),
  "echo unary c=256": () => measure(echo, echoAddress, "/bench.Echo/Echo", "cnn.frame", 256, 1),
  "cnn PredictStream 4x64 (per message)": () => measure(server, serverAddress, "/aiaas.v1.Inference/PredictStream", "cnn.x64.frame", 4, 64),
  "echo stream 4x64 (per message)": () => measure(echo, echoAddress, "/bench.Echo/EchoStream", "cnn.x64.frame", 4, 64),
  "tiny Predict unary c=256": () => measure(server, serverAddress, "/aiaas.v1.Inference/Predict", "tiny.frame", 256, 1),
};

try {
  const raw: Record<string, GcSample[]> = {};
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const [name, run] of Object.entries(points)) {
      const s = await run();
      (raw[name] ??= []).push(s);
      process.stderr.write(`  round ${round + 1} ${name.padEnd(38)} scavenge ${s.scavengeMainUs.toFixed(1)} + helpers ${s.scavengeHelpersUs.toFixed(1)} µs, mark-compact ${s.markCompactMainUs.toFixed(1)} µs, promoted ${s.promotedBytes.toFixed(0)} B\n`);
    }
  }
  const m = (xs: number[], digits = 1): string => median(xs).toFixed(digits);
  const lines = [
    `| point (median of ${args.rounds}, ${seconds}s each; per request) | scavenge, main thread µs | scavenge, helper threads µs | mark-compact, main thread µs | GC in all µs | survived a scavenge, bytes | promoted, bytes | allocated, bytes | scavenges per 1000 | req/s |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [name, samples] of Object.entries(raw)) {
    const all = samples.map((s) => s.scavengeMainUs + s.scavengeHelpersUs + s.markCompactMainUs);
    lines.push(
      `| ${name} | ${m(samples.map((s) => s.scavengeMainUs))} | ${m(samples.map((s) => s.scavengeHelpersUs))} | ${m(samples.map((s) => s.markCompactMainUs))} | **${m(all)}** | ${m(samples.map((s) => s.survivedBytes), 0)} | ${m(samples.map((s) => s.promotedBytes), 0)} | ${m(samples.map((s) => s.allocatedBytes), 0)} | ${m(samples.map((s) => s.scavengesPer1000), 2)} | ${m(samples.map((s) => s.perSecond), 0)} |`,
    );
  }
  console.log(lines.join("\n"));
  await mkdir(join(args.out!, ".."), { recursive: true });
  await writeFile(args.out!, JSON.stringify({ date: new Date().toISOString(), machine: machine(), build: args.build === "." ? "this tree" : resolve(args.build!), seconds, raw, table: lines.join("\n") }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
