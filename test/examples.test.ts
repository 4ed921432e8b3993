// Every example runs against a server over the embedded models/, so the examples cannot rot; the CLI's
// client commands are exercised the same way.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { pino } from "pino";
import { startServer, type RunningServer } from "@aiaas/server";
import { aiaas } from "./support/cli.js";
import { copyEmbeddedModels, type EmbeddedModels } from "./support/embedded-models.js";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

describe("examples and CLI client commands against models/", () => {
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;
  let models: EmbeddedModels;
  before(async () => {
    models = await copyEmbeddedModels();
    server = await startServer({ modelsDir: models.dir, host: "127.0.0.1", port: 0, providers: ["cpu"], logger: pino({ level: "silent" }) });
    env = { ...process.env, AIAAS_ADDRESS: server.address };
  });
  after(async () => {
    await server.shutdown();
    await models.remove();
  });

  const tsx = (script: string, extra: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, ["--import", "tsx", script], { cwd: root, env: { ...env, ...extra } });

  it("quickstart predicts real digits", async () => {
    const { stdout } = await tsx("examples/quickstart.ts");
    assert.match(stdout, /digit 0: label 4, predicted 4/);
    const [, correct] = /(\d+)\/8 correct/.exec(stdout)!;
    assert.ok(Number(correct) >= 6, stdout);
  });

  it("predict-stream streams requests and reports throughput", async () => {
    const { stdout } = await tsx("examples/predict-stream.ts", { EXAMPLE_COUNT: "500" });
    assert.match(stdout, /500 predictions in [\d.]+ s: \d+ per second, 0 failed/);
    const accuracy = Number(/accuracy ([\d.]+)%/.exec(stdout)![1]);
    assert.ok(accuracy > 80, stdout);
  });

  describe("aiaas models / aiaas predict", () => {
    const cli = (...args: string[]) => aiaas(...args, "--address", server.address);
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "aiaas-cli-"));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it("lists the models as a table and as JSON", async () => {
      const table = await cli("models");
      assert.equal(table.code, 0);
      assert.match(table.stdout, /mnist-cnn\s+ready\s+1\s+64\s+cpu\s+image float32 \[-1, 1, 28, 28\] -> logits float32 \[-1, 10\]/);
      const json = await cli("models", "--json");
      assert.deepEqual(JSON.parse(json.stdout).map((m: { name: string }) => m.name), ["mnist-cnn", "mnist-linear"]);
    });

    it("predicts from the shipped files as the README writes it: one JSON tensor, or a whole grpcurl request", async () => {
      for (const file of ["examples/requests/digit.json", "examples/requests/predict-digit.json"]) {
        const result = await cli("predict", "mnist-linear", "--input", `image=${join(root, file)}`, "--output", "probabilities");
        assert.equal(result.code, 0, `${file}: ${result.stderr}`);
        const out = JSON.parse(result.stdout);
        assert.equal(out.outputs[0].name, "probabilities");
        assert.equal(out.outputs[0].datatype, "DATA_TYPE_FP32");
        const p: number[] = out.outputs[0].fp32Data;
        assert.equal(p.indexOf(Math.max(...p)), 4, file);
      }
      await writeFile(join(dir, "two.json"), JSON.stringify({ inputs: [{ name: "a", datatype: "DATA_TYPE_FP32", shape: [1], fp32_data: [1] }, { name: "b", datatype: "DATA_TYPE_FP32", shape: [1], fp32_data: [1] }] }));
      const none = await cli("predict", "mnist-linear", "--input", `image=${join(dir, "two.json")}`);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /the request's inputs \("a", "b"\) have none named "image"/);
    });

    it("exits 1 with the server's message when the server refuses, 2 on a bad input file", async () => {
      await writeFile(join(dir, "short.json"), JSON.stringify({ datatype: "DATA_TYPE_FP32", shape: [1, 4], fp32_data: [1, 2, 3, 4] }));
      const refused = await cli("predict", "mnist-linear", "--input", `image=${join(dir, "short.json")}`);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /error: INVALID_ARGUMENT: .*dimension 1 must be 784/);
      const missing = await cli("predict", "mnist-linear", "--input", `image=${join(dir, "nope.json")}`);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read/);
      await writeFile(join(dir, "typo.json"), JSON.stringify({ datatype: "DATA_TYPE_FP33", shape: [2], fp32_data: [1, 2] }));
      const typo = await cli("predict", "mnist-linear", "--input", `image=${join(dir, "typo.json")}`);
      assert.equal(typo.code, 2);
      assert.equal(typo.stderr.split("--input image").length - 1, 1, `the prefix appears once: ${typo.stderr}`);
      await writeFile(join(dir, "bad.json"), JSON.stringify({ datatype: "DATA_TYPE_FP32", shape: [2], fp32_data: [1] }));
      const mismatch = await cli("predict", "mnist-linear", "--input", `image=${join(dir, "bad.json")}`);
      assert.equal(mismatch.code, 2, "a tensor whose values do not fill its shape is a bad input file");
      assert.match(mismatch.stderr, /needs 2 elements, got 1/);
      const unknown = await cli("predict", "nope", "--input", `image=${join(dir, "short.json")}`);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /NOT_FOUND/);
    });
  });
});
