// An attacker opens many PredictStreams that send and never read, while a well-behaved client predicts;
// then the attacker leaves. Prints the good client's failures and the server's RSS before, during and after.
//   npm run bench:abuse [-- --streams 1000 --messages 64 --good 3000]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { connect, type ClientHttp2Session } from "node:http2";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient, Tensor } from "@aiaas/sdk";
import { PredictRequest } from "@aiaas/sdk/gen";

// The servers this bench starts keep no state: it measures serving, not durable jobs.
process.env.AIAAS_STATE_DIR ??= "none";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "1000" },
    messages: { type: "string", default: "64" },
    good: { type: "string", default: "3000" },
    rounds: { type: "string", default: "3" },
  },
});
const STREAMS = Number(values.streams);
const MESSAGES = Number(values.messages);
const GOOD = Number(values.good);
const ROUNDS = Number(values.rounds);

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const dir = await mkdtemp(join(tmpdir(), "aiaas-abuse-"));
await cp("models", join(dir, "models"), { recursive: true });
// A free port, then the server on it.
const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as { port: number };
    probe.close(() => resolve(port));
  });
});
const address = `127.0.0.1:${port}`;
const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean), "server/dist/bin/aiaas.js", "serve", "--models", join(dir, "models"), "--host", "127.0.0.1", "--port", String(port), "--http-port", "-1", "--log-level", "warn"], {
  stdio: ["ignore", "inherit", "inherit"],
});
const client = createClient({ address, retry: { maxAttempts: 1 } });
const image = Tensor.float32([1, 1, 28, 28], new Float32Array(784).fill(0.5));
for (let attempt = 0; ; attempt++) {
  try {
    await client.predict("mnist-cnn", { image });
    break;
  } catch (error) {
    if (attempt > 100) throw error;
    await sleep(200);
  }
}
for (let i = 0; i < 200; i++) await client.predict("mnist-cnn", { image }); // warm
const before = rssMb(child.pid!);

const message = PredictRequest.encode(PredictRequest.fromPartial({ model: "mnist-cnn", inputs: [{ name: "image", datatype: 1, shape: [1n, 1n, 28n, 28n], rawData: new Uint8Array(784 * 4) }] })).finish();
const frame = Buffer.alloc(5 + message.length);
frame.writeUInt32BE(message.length, 1);
Buffer.from(message).copy(frame, 5);

/** One attack: STREAMS streams over 10 connections, each sends MESSAGES requests and never reads; the good client predicts meanwhile. */
async function attack(): Promise<{ failures: number; codes: Map<string, number>; goodSeconds: number; during: number; after: number; settled: number }> {
  const sessions: ClientHttp2Session[] = Array.from({ length: 10 }, () => connect(`http://${address}`));
  for (const s of sessions) s.on("error", () => undefined);
  for (let i = 0; i < STREAMS; i++) {
    const stream = sessions[i % sessions.length]!.request({ ":method": "POST", ":path": "/aiaas.v1.Inference/PredictStream", "content-type": "application/grpc", te: "trailers" });
    stream.on("error", () => undefined);
    stream.pause(); // never read
    for (let m = 0; m < MESSAGES; m++) stream.write(frame);
  }
  await sleep(2000);
  let failures = 0;
  const codes = new Map<string, number>();
  const goodStarted = performance.now();
  for (let i = 0; i < GOOD; i += 16) {
    await Promise.all(
      Array.from({ length: 16 }, () =>
        client.predict("mnist-cnn", { image }).catch((e: { code?: number }) => {
          failures++;
          codes.set(String(e.code), (codes.get(String(e.code)) ?? 0) + 1);
        }),
      ),
    );
  }
  const goodSeconds = (performance.now() - goodStarted) / 1000;
  const during = rssMb(child.pid!);
  for (const s of sessions) s.destroy();
  await sleep(5000);
  const after = rssMb(child.pid!);
  // V8's memory reducer gives back heap once allocation has been quiet for a while.
  await sleep(25_000);
  return { failures, codes, goodSeconds, during, after, settled: rssMb(child.pid!) };
}

console.log(`attack: ${STREAMS} PredictStreams x ${MESSAGES} unread requests, ${ROUNDS} rounds; good client: ${GOOD} Predicts a round; server RSS before: ${before.toFixed(0)} MB`);
for (let round = 1; round <= ROUNDS; round++) {
  const r = await attack();
  console.log(
    `round ${round}: good client ${r.failures} failures ${JSON.stringify(Object.fromEntries(r.codes))} in ${r.goodSeconds.toFixed(1)} s; RSS during ${r.during.toFixed(0)} MB, 5 s after the attacker left ${r.after.toFixed(0)} MB (${((r.after / before - 1) * 100).toFixed(0)}% over before), 30 s after ${r.settled.toFixed(0)} MB (${((r.settled / before - 1) * 100).toFixed(0)}%)`,
  );
}
client.close();
child.kill("SIGTERM");
await new Promise((resolve) => child.once("exit", resolve));
await rm(dir, { recursive: true, force: true });
