// Runs the README's buf curl session against the real CLI serving the embedded models/, then stops it
// with SIGTERM and expects a clean exit.
import assert from "node:assert/strict";
import { probeCuda } from "../server/src/cuda-probe.js";
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { copyEmbeddedModels, type EmbeddedModels } from "./support/embedded-models.js";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

/** The command lines of the marked session in README.md or examples/grpcurl.md. */
async function sessionLines(file: string): Promise<string[]> {
  const text = await readFile(new URL(`../${file}`, import.meta.url), "utf8");
  const block = text.split("<!-- readme-session -->")[1].split("```sh")[1].split("```")[0];
  return block.split("\n").filter((line) => line && !line.startsWith("#"));
}

/** The buf curl lines of a session: the ones the tests run. */
const sessionCommands = async (file: string): Promise<string[]> => (await sessionLines(file)).filter((line) => line.startsWith("npx buf curl"));

const BUF = "npx buf curl --protocol grpc --http2-prior-knowledge";

/**
 * The buf curl spelling of a grpcurl command line, for the forms the sessions use: list, a call
 * with -d JSON, and a call reading its body from a file (-d @ … < file). Anything else is an error.
 */
function bufCurlOf(grpcurl: string): string {
  const call = /^grpcurl -plaintext (?:-d (@|'[^']*') )?(\S+) (\S+\/\S+)(?: < (\S+))?$/.exec(grpcurl);
  if (call) {
    const [, body, host, method, file] = call;
    const data = body === "@" ? `-d @${file}` : body ? `-d ${body}` : "";
    return `${BUF} ${data ? `${data} ` : ""}http://${host}/${method}`;
  }
  // (grpcurl's `list SERVICE` has no buf curl spelling: --list-methods lists every service's methods.)
  const list = /^grpcurl -plaintext (\S+) list$/.exec(grpcurl);
  if (list) return `${BUF} --list-services http://${list[1]}`;
  throw new Error(`no buf curl spelling known for: ${grpcurl}`);
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

  it("spells every grpcurl line of the sessions as the buf curl line under it (the one that runs), and runs it too where grpcurl is installed", async (t) => {
    const grpcurl = await run("grpcurl", ["-version"]).then(() => true, () => false);
    for (const file of ["README.md", "examples/grpcurl.md"]) {
      const lines = await sessionLines(file);
      const pairs = lines.flatMap((line, i) => (line.startsWith("grpcurl ") ? [[line, lines[i + 1] ?? ""] as const] : []));
      assert.equal(pairs.length, (await sessionCommands(file)).length, `${file}: one grpcurl line per buf curl line`);
      for (const [g, b] of pairs) {
        assert.equal(b, bufCurlOf(g), `${file}: the line under "${g}"`);
        if (grpcurl) await run("sh", ["-c", g.replaceAll("localhost:50051", address)], { cwd: root }).catch((e: { stderr: string }) => assert.match(e.stderr, /invalid_argument|InvalidArgument/i, g));
      }
    }
    if (!grpcurl) t.diagnostic("grpcurl is not installed here: its lines were checked against their buf curl spellings, which ran");
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
    assert.match(outputs[1], /"name": "mnist-linear"/);
    assert.match(outputs[1], /"state": "MODEL_STATE_READY"/);
    assert.match(outputs[2], /"id": "digit-4"/);
  });

  it("answers every buf curl command of examples/grpcurl.md", async () => {
    const commands = await sessionCommands("examples/grpcurl.md");
    assert.ok(commands.length >= 5, "the session shows a buf curl command per step");
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
    assert.match(all, /"status": "SERVING"/);
    assert.match(all, /invalid_argument[\s\S]*dimension 1 must be 784/);
    const digit = outputs.find((o) => o.includes('"id": "digit-4"'));
    assert.ok(digit, "the digit request answers with its id");
    const probabilities = (JSON.parse(digit) as { outputs: Array<{ fp32Data: number[] }> }).outputs[0].fp32Data;
    assert.equal(probabilities.length, 10);
    assert.equal(probabilities.indexOf(Math.max(...probabilities)), 4, "mnist-linear reads the held-out 4 as a 4");
  });

  it("says in one log line which provider serves: CUDA where it works, else CPU and why", async () => {
    // `--providers` defaults to auto; the default install has no CUDA binaries, so most machines fall back.
    const fallback = logs.filter((l) => l.includes("CUDA execution provider unavailable, falling back to CPU"));
    if ((await probeCuda()).available) {
      assert.equal(fallback.length, 0, logs.join("\n"));
      assert.ok(logs.some((l) => l.includes("mnist-cnn:1 runs on CUDA")), logs.join("\n"));
    } else {
      assert.equal(fallback.length, 1, logs.join("\n"));
      assert.ok(logs.some((l) => l.includes("mnist-cnn:1 runs on CPU")));
    }
    // ...and only that line: no native ONNX Runtime error leaks to stderr.
    assert.equal(stderr, "", "nothing on stderr");
  });

  it("exits 0 on SIGTERM after a graceful shutdown", async () => {
    const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
    server.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.ok(logs.some((l) => l.includes("SIGTERM: finishing calls in flight")));
    assert.ok(logs.some((l) => l.includes("aiaas stopped")));
  });
});
