// `npm run bench:cpu`: the server's own CPU per request (see cpu-table.ts) alone, without the throughput
// table of `npm run bench`. `--build DIR` measures another built checkout's server (before/after figures);
// `--out FILE` names the raw result file (default bench/results/cpu.json); `--only c=1,stream` keeps the points
// whose names contain one of the words.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { ModelsClient } from "@aiaas/sdk/gen";
import { ECHO_ARGV, echoAddress } from "./bench-targets.js";
import { cpuTable } from "./cpu-table.js";
import { machine } from "./machine.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { exitOf, startChild } from "./start-child.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "5" },
    build: { type: "string", default: "." },
    out: { type: "string", default: "bench/results/cpu.json" },
    only: { type: "string", default: "" },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const work = await mkdtemp(join(tmpdir(), "aiaas-cpu-bench-"));
const fixtures = await writeServeFixtures(work);
const server = await startChild(
  // As `aiaas serve` runs by default (with its operations port, so the metrics are recorded), and with the
  // young generation the Dockerfile sets.
  ["--max-semi-space-size=32", resolve(args.build!, "server/dist/bin/aiaas.js"), "serve", "--models", fixtures.repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu"],
  (e) => e.address as string | undefined,
);
const echo = await startChild([...ECHO_ARGV], echoAddress);
const models = new ModelsClient(server.value, credentials.createInsecure());
try {
  const table = await cpuTable({
    server: { pid: server.child.pid!, address: server.value },
    echo: { pid: echo.child.pid!, address: echo.value },
    models,
    work,
    modelBytes: Object.fromEntries(Object.entries(fixtures.models).map(([name, m]) => [name, m.bytes])),
    inputShape: fixtures.inputShapes,
    seconds,
    rounds,
    log: (line) => process.stderr.write(`${line}\n`),
    only: args.only!.split(",").filter(Boolean),
  });
  console.log(table.markdown);
  await mkdir(dirname(args.out!), { recursive: true });
  const build = args.build === "." ? "this tree" : resolve(args.build!);
  await writeFile(args.out!, JSON.stringify({ date: new Date().toISOString(), machine: machine(), build, seconds, rounds, table: table.markdown, points: table.raw }, null, 2));
} finally {
  models.close();
  echo.child.kill("SIGTERM");
  server.child.kill("SIGTERM");
  await exitOf(server.child);
  await rm(work, { recursive: true, force: true });
}
