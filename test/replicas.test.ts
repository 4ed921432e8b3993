// Three server processes on loopback behind one SDK client with three addresses: calls spread over all of
// them, and the client rides through one replica stopping (SIGTERM) without a failed call.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { Tensor, createClient } from "@aiaas/sdk";
import { copyEmbeddedModels, type EmbeddedModels } from "./support/embedded-models.js";

const root = new URL("..", import.meta.url).pathname;

function startReplica(models: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ["server/dist/bin/aiaas.js", "serve", "--models", models, "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu", "--log-level", "info"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const address = (JSON.parse(line) as { address?: string }).address;
      if (address) resolve({ child, address });
    });
    child.once("exit", (code) => reject(new Error(`replica exited with ${code}`)));
  });
}

describe("three replicas behind one client", () => {
  let replicas: Array<{ child: ChildProcess; address: string }>;
  let models: EmbeddedModels;
  before(async () => {
    models = await copyEmbeddedModels();
    replicas = await Promise.all([startReplica(models.dir), startReplica(models.dir), startReplica(models.dir)]);
  });
  after(async () => {
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill("SIGKILL");
    await models.remove();
  });

  it("spreads calls across all replicas and rides through one stopping", { timeout: 60_000 }, async () => {
    const client = createClient({ addresses: replicas.map((r) => r.address), retry: { maxAttempts: 6, initialBackoffMs: 50, maxBackoffMs: 500 } });
    const image = Tensor.float32([1, 784], new Float32Array(784).fill(0.5));
    const served = async (): Promise<number[]> =>
      Promise.all(
        replicas.map(async (r) => {
          if (r.child.exitCode !== null) return -1;
          const one = createClient({ address: r.address });
          const info = await one.models.get("mnist-linear");
          one.close();
          return info.versions[0].statistics!.successCount;
        }),
      );
    for (let i = 0; i < 30; i++) await client.predict("mnist-linear", { image });
    const counts = await served();
    assert.ok(counts.every((n) => n >= 5), `30 sequential calls spread as ${counts.join(" + ")}`);

    // Keep calling (sequential and overlapping) while one replica stops.
    let failures = 0;
    let ok = 0;
    let stop = false;
    const caller = async () => {
      while (!stop) {
        try {
          await client.predict("mnist-linear", { image }, { timeoutMs: 10_000 });
          ok++;
        } catch (error) {
          failures++;
          console.error("failed call:", error);
        }
      }
    };
    const callers = Array.from({ length: 8 }, caller);
    await new Promise((r) => setTimeout(r, 300));
    const stopped = new Promise((resolve) => replicas[1].child.once("exit", resolve));
    replicas[1].child.kill("SIGTERM");
    await stopped;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(callers);
    client.close();
    assert.equal(failures, 0, `${failures} calls failed while a replica stopped (${ok} succeeded)`);
    assert.ok(ok > 50);
    assert.equal(replicas[1].child.exitCode, 0, "the stopped replica exited cleanly");
  });
});
