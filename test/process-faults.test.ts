// The server process under real signals while it serves: SIGTERM under Predict load fails no call that was in
// flight; kill -9 under load leaves nothing to repair, and the restart serves again (its time to READY printed).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { createClient, Tensor, type AiaasClient } from "@aiaas/sdk";
import { buildMnistCnn, slowModel, writeRepository } from "./support/fixtures.js";

const root = new URL("..", import.meta.url).pathname;

async function serve(models: string, state: string): Promise<{ child: ChildProcess; client: AiaasClient; http: number; readyMs: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ["server/dist/bin/aiaas.js", "serve", "--models", models, "--state-dir", state, "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu", "--shutdown-grace-ms", "20000"],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  let http = 0;
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as { address?: string; msg?: string; httpPort?: number };
      if (entry.httpPort) http = entry.httpPort;
      if (entry.msg?.includes("aiaas listening")) resolve(entry.address!);
    });
    child.once("exit", (code) => reject(new Error(`aiaas serve exited with ${code}: ${err}`)));
  });
  const client = createClient({ address });
  // READY: the health endpoint says so and a prediction answers.
  for (;;) {
    const ok = http ? await fetch(`http://127.0.0.1:${http}/v2/health/ready`).then((r) => r.ok, () => false) : true;
    if (ok) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, client, http, readyMs: performance.now() - started };
}

const image = Tensor.float32([1, 1, 28, 28], new Float32Array(784).fill(0.5));

describe("the server process under signals", () => {
  let dir: string;
  let models: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-signals-"));
    models = join(dir, "models");
    await writeRepository(models, { cnn: { model: buildMnistCnn() }, slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } } });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("SIGTERM under load: every call in flight completes", async () => {
    const server = await serve(models, join(dir, "state-term"));
    const x = Tensor.float32([1, 512], new Float32Array(512).fill(1));
    // Connected first, then 20 calls queued behind one slow session: all in flight when SIGTERM comes.
    await server.client.predict("slow", { x });
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) calls.push(server.client.predict("slow", { x }));
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((resolve) => server.child.once("exit", resolve));
    server.child.kill("SIGTERM");
    const results = await Promise.allSettled(calls);
    const failed = results.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 0, `calls in flight failed: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 3).join("; ")}`);
    assert.equal(await exited, 0);
    server.client.close();
  });

  it("kill -9 under load: the restart serves again with nothing left to repair", async () => {
    const state = join(dir, "state-kill");
    const first = await serve(models, state);
    let stop = false;
    const load = Array.from({ length: 16 }, async () => {
      while (!stop) await first.client.predict("cnn", { image }).catch(() => undefined);
    });
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((resolve) => first.child.once("exit", resolve));
    first.child.kill("SIGKILL");
    await exited;
    stop = true;
    await Promise.all(load);
    first.client.close();
    const second = await serve(models, state);
    try {
      const res = await second.client.predict("cnn", { image });
      assert.deepEqual(Object.values(res.outputs)[0]!.shape, [1, 10]);
      assert.deepEqual((await readdir(join(models, "cnn"))).filter((f) => f.startsWith(".")), [], "no staging left");
      console.log(`# restart after kill -9 under load: READY in ${second.readyMs.toFixed(0)} ms (state folder, 1 model)`);
    } finally {
      second.client.close();
      second.child.kill("SIGTERM");
    }
  });
});
