// Runs the README's buf curl session against the real CLI serving the embedded models/, then stops it
// with SIGTERM and expects a clean exit.
import assert from "node:assert/strict";
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { copyEmbeddedModels, type EmbeddedModels } from "./support/embedded-models.js";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

/** The buf curl lines of the marked sessions in README.md and examples/grpcurl.md. */
async function sessionCommands(file: string): Promise<string[]> {
  const text = await readFile(new URL(`../${file}`, import.meta.url), "utf8");
  const block = text.split("<!-- readme-session -->")[1].split("```sh")[1].split("```")[0];
  return block.split("\n").filter((line) => line.startsWith("npx buf curl"));
}

describe("the README's session and the CLI", () => {
  let server: ChildProcess;
  let address = "";
  const logs: string[] = [];
  let stderr = "";
  let models: EmbeddedModels;

  before(async () => {
    models = await copyEmbeddedModels();
    server = spawn(process.execPath, ["server/dist/bin/aiaas.js", "serve", "--models", models.dir, "--host", "127.0.0.1", "--port", "0", "--http-port", "0"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    address = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: server.stdout! });
      lines.on("line", (line) => {
        logs.push(line);
        const entry = JSON.parse(line) as { address?: string };
        if (entry.address) resolve(entry.address);
      });
      server.once("exit", (code) => reject(new Error(`aiaas serve exited with ${code}:\n${logs.join("\n")}`)));
    });
  });
  after(async () => {
    if (server.exitCode === null) server.kill("SIGKILL");
    await models.remove();
  });

  it("answers the README's buf curl commands", async () => {
    const commands = await sessionCommands("README.md");
    assert.equal(commands.length, 3);
    const outputs: string[] = [];
    for (const command of commands) {
      const line = command.replaceAll("http://localhost:50051", `http://${address}`);
      outputs.push((await run("sh", ["-c", line], { cwd: root })).stdout);
    }
    assert.match(outputs[0], /^aiaas\.v1\.Inference$/m);
    assert.match(outputs[1], /^aiaas\.v1\.Inference\/PredictStream$/m);
    assert.match(outputs[2], /"id": "digit-4"/);
  });

  it("answers every buf curl command of examples/grpcurl.md", async () => {
    const commands = await sessionCommands("examples/grpcurl.md");
    assert.ok(commands.length >= 6, "the session shows a buf curl command per step");
    const outputs: string[] = [];
    for (const command of commands) {
      const line = command.replaceAll("http://localhost:50051", `http://${address}`);
      const result = await run("sh", ["-c", line], { cwd: root }).then(
        (r) => ({ ok: true, out: r.stdout }),
        (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stdout + e.stderr }),
      );
      const mistake = command.includes('"shape": [1, 4]');
      assert.equal(result.ok, !mistake, `${command}\n${result.out}`);
      outputs.push(result.out);
    }
    const all = outputs.join("\n");
    assert.match(all, /aiaas\.v1\.Inference\n/);
    assert.match(all, /aiaas\.v1\.Models\n/);
    assert.match(all, /grpc\.health\.v1\.Health/);
    assert.match(all, /^inference\.GRPCInferenceService$/m);
    assert.match(all, /^inference\.GRPCInferenceService\/ModelInfer$/m);
    assert.match(all, /aiaas\.v1\.Inference\/PredictStream/);
    assert.match(all, /"status": "SERVING"/);
    assert.match(all, /invalid_argument[\s\S]*dimension 1 must be 784/);
    const digit = outputs.find((o) => o.includes('"id": "digit-4"'));
    assert.ok(digit, "the digit request answers with its id");
    const probabilities = (JSON.parse(digit) as { outputs: Array<{ fp32Data: number[] }> }).outputs[0].fp32Data;
    assert.equal(probabilities.length, 10);
    assert.equal(probabilities.indexOf(Math.max(...probabilities)), 4, "mnist-linear reads the held-out 4 as a 4");
  });

  it("says in one log line that CUDA is unavailable and CPU serves", () => {
    // This machine has no GPU and the default install has no CUDA binaries; `--providers` defaults to auto.
    const fallback = logs.filter((l) => l.includes("CUDA execution provider unavailable, falling back to CPU"));
    assert.equal(fallback.length, 1, logs.join("\n"));
    // ...and only that line: no native ONNX Runtime error leaks to stderr on a CPU machine.
    assert.equal(stderr, "", "nothing on stderr");
    assert.ok(logs.some((l) => l.includes("mnist-cnn:1 runs on CPU")));
  });

  it("exits 0 on SIGTERM after a graceful shutdown", async () => {
    const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
    server.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.ok(logs.some((l) => l.includes("SIGTERM: finishing calls in flight")));
    assert.ok(logs.some((l) => l.includes("aiaas stopped")));
  });
});
