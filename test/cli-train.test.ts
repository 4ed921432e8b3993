// `aiaas train` and `aiaas jobs` against a real server over a temporary repository.
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

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

describe("aiaas train / aiaas jobs", () => {
  let server: RunningServer;
  let dir: string;
  const cli = (...args: string[]) => aiaas(...args, "--address", server.address);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-cli-train-"));
    await writeFile(join(dir, "models.keep"), "");
    server = await startServer({ modelsDir: await mkdtemp(join(tmpdir(), "aiaas-cli-repo-")), host: "127.0.0.1", port: 0, providers: "cpu", logger: pino({ level: "silent" }) });
    await writeFile(
      join(dir, "spec.json"),
      JSON.stringify({
        model: "toy",
        architecture: { input: { dims: [2, 2] }, layers: [{ type: "flatten" }, { type: "dense", units: 8 }, { type: "relu" }, { type: "dense", units: 3 }] },
        epochs: 4,
        batchSize: 16,
        optimizer: { learningRate: 0.02 },
      }),
    );
    const row = (r: number) => {
      const k = r % 3;
      return JSON.stringify({ input: [[k === 0 ? 1.5 : 0, k === 1 ? 1.5 : 0], [k === 2 ? 1.5 : 0, Math.sin(r) * 0.3]], label: k });
    };
    await writeFile(join(dir, "train.jsonl"), Array.from({ length: 300 }, (_, r) => row(r)).join("\n") + "\n");
    await writeFile(join(dir, "val.jsonl"), Array.from({ length: 60 }, (_, r) => row(r + 1000)).join("\n") + "\n");
  });
  after(async () => {
    await server.shutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("trains from a spec and JSON Lines, shows progress, prints a summary, and the version serves", async () => {
    const r = await cli("train", "--spec", join(dir, "spec.json"), "--data", join(dir, "train.jsonl"), "--validation-data", join(dir, "val.jsonl"), "--chunk-rows", "100");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /published toy version 1 \(stopped by epochs\)/);
    assert.match(r.stdout, /validation loss [\d.]+, accuracy [\d.]+% on 60 rows/);
    assert.match(r.stderr, /uploaded 300 training rows, 60 validation rows/);
    assert.match(r.stderr, /step \d+\/76/);
    const models = await cli("models");
    assert.match(models.stdout, /toy\s+ready\s+1/);
    const jobs = await cli("jobs", "list");
    assert.match(jobs.stdout, /toy {2}succeeded {2}step 76\/76 {2}version 1/);
    const id = jobs.stdout.split(/\s+/)[0]!;
    const job = JSON.parse((await cli("jobs", "get", id)).stdout);
    assert.equal(job.state, "succeeded");
    const events = (await cli("jobs", "watch", id, "--after", "2")).stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(events[0].eventId, "3");
    assert.equal(events.at(-1).state, "succeeded");
  });

  it("examples/train-mnist.ts trains the seed CNN on real digits and scores the new version with Predict", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/train-mnist.ts"], {
      cwd: root,
      env: { ...process.env, AIAAS_ADDRESS: server.address, EXAMPLE_EPOCHS: "1", EXAMPLE_MODEL: "digits" },
    });
    assert.match(stdout, /\[running\] training on 8000 rows, 2000 held out, 125 steps/);
    assert.match(stdout, /epoch 1 step 125\/125: loss [\d.]+/);
    const validation = Number(/epoch 1: held-out loss [\d.]+, accuracy ([\d.]+)%/.exec(stdout)![1]);
    const predicted = Number(/held-out accuracy of digits version 1 by Predict: ([\d.]+)% of 2000 digits/.exec(stdout)![1]);
    assert.ok(predicted > 88, stdout);
    assert.equal(predicted, validation, "Predict on the published version scores as the job's own validation did");
  });

  it("exits 2 for a bad data file and 1 when the server refuses the job", async () => {
    await writeFile(join(dir, "bad.jsonl"), '{"input": [1, 2, 3, 4]}\n');
    const bad = await cli("train", "--spec", join(dir, "spec.json"), "--data", join(dir, "bad.jsonl"));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad.jsonl:1: no "label"/);
    await writeFile(join(dir, "range.jsonl"), '{"input": [[1, 2], [3, 4]], "label": 9}\n');
    const refused = await cli("train", "--spec", join(dir, "spec.json"), "--data", join(dir, "range.jsonl"));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /INVALID_ARGUMENT: chunk 0: labels\[0\] = 9 is out of range/);
  });
});
