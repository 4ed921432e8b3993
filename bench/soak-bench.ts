// `npm run bench:soak`: the seed CNN under 256 requests in flight for --seconds (default 60) with h2load,
// the server in its own process. Reports the server's RSS after the first 10k requests, after 100k, and at
// the end (from /proc), and the failures the server counted (zero expected).
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { ModelsClient, type GetModelResponse } from "@aiaas/sdk/gen";
import { h2loadCount } from "./load.js";
import { writeServeFixtures } from "./serve-fixtures.js";
import { startChild } from "./start-child.js";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "60" } } });
const seconds = Number(args.seconds);
const work = await mkdtemp(join(tmpdir(), "aiaas-soak-"));
const { repo } = await writeServeFixtures(work);
const server = await startChild(
  [...(process.env.SOAK_NODE_ARGS ?? "--max-semi-space-size=32").split(" ").filter(Boolean), "server/dist/bin/aiaas.js", "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu"],
  (e) => e.address as string | undefined,
);
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, "utf8"))![1]) / 1024;
const url = `http://${server.value}/aiaas.v1.Inference/Predict`;
const frame = join(work, "cnn.frame");
const log = join(work, "h2load.log");
try {
  const started = performance.now();
  const first = await h2loadCount(url, frame, 256, 10_000, log);
  const at10k = rssMiB();
  const second = await h2loadCount(url, frame, 256, 90_000, log);
  const at100k = rssMiB();
  let total = 100_000;
  let failed = first.failed + second.failed;
  while ((performance.now() - started) / 1000 < seconds) {
    const more = await h2loadCount(url, frame, 256, 20_000, log);
    total += 20_000;
    failed += more.failed;
  }
  const atEnd = rssMiB();
  const models = new ModelsClient(server.value, credentials.createInsecure());
  const res = await new Promise<GetModelResponse>((resolve, reject) => models.getModel({ name: "cnn" }, (e, r) => (e ? reject(e) : resolve(r))));
  const stats = res.model!.versions[0]!.statistics!;
  models.close();
  const elapsed = (performance.now() - started) / 1000;
  console.log(
    `| soak (seed CNN, h2load c=256) | value |\n|---|---:|\n| seconds | ${elapsed.toFixed(0)} |\n| requests | ${total} |\n| per second | ${(total / elapsed).toFixed(0)} |\n` +
      `| failed (h2load / server) | ${failed} / ${stats.failureCount} |\n| RSS after 10k, MiB | ${at10k.toFixed(0)} |\n| RSS after 100k, MiB | ${at100k.toFixed(0)} |\n` +
      `| RSS at the end, MiB | ${atEnd.toFixed(0)} |\n| 100k / 10k | ${(at100k / at10k).toFixed(3)} |`,
  );
} finally {
  server.child.kill("SIGTERM");
  await rm(work, { recursive: true, force: true });
}
