// `aiaas train` and `aiaas jobs` against a real server over a temporary repository.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { pino } from "pino";
import { AiaasError, Code, createClient, type TrainSpecInput } from "@aiaas/sdk";
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
    server = await startServer({ modelsDir: await mkdtemp(join(tmpdir(), "aiaas-cli-repo-")), host: "127.0.0.1", port: 0, providers: ["cpu"], logger: pino({ level: "silent" }) });
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
    // Not a terminal: one plain progress line per epoch, each printed once.
    const epochs = r.stderr.split("\n").filter((l) => /^epoch \d+: step \d+\/76, loss [\d.]+/.test(l));
    assert.deepEqual(epochs.map((l) => Number(/^epoch (\d+)/.exec(l)![1])), [1, 2, 3, 4], r.stderr);
    assert.doesNotMatch(r.stderr, /█|░|\r/, "no bar drawing in a pipe");
    const models = await cli("models");
    assert.match(models.stdout, /toy\s+ready\s+1/);
    const jobs = await cli("jobs", "list");
    assert.match(jobs.stdout, /^JOB\s+MODEL\s+STATE\s+STEP\s+VERSION\s+CREATED\s+ERROR$/m, "a header row");
    assert.match(jobs.stdout, /toy\s+succeeded\s+76\/76\s+1\s+20\d\d-/);
    const id = jobs.stdout.split("\n")[1]!.split(/\s+/)[0]!;
    assert.deepEqual((JSON.parse((await cli("jobs", "list", "--json")).stdout) as { id: string }[]).map((j) => j.id), [id]);
    const job = JSON.parse((await cli("jobs", "get", id, "--json")).stdout);
    assert.equal(job.state, "succeeded");
    assert.match((await cli("jobs", "get", id)).stdout, new RegExp(`^${id}\\s+toy\\s+succeeded`, "m"));
    // Cancelling a job that has ended says so and exits 0: it is not running either way.
    const late = await cli("jobs", "cancel", id);
    assert.equal(late.code, 0);
    assert.equal(late.stdout.trim(), `job ${id} had already succeeded; nothing to cancel`);
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
    // A bad row deep in the file names its line.
    const good = '{"input": [[1, 0], [0, 0]], "label": 0}';
    for (const [line, pattern] of [
      ['{"input": [1, 2, 3], "label": 1}', /wide.jsonl:3: input "input" has 3 values; a row holds 4 \(shape \[2, 2\]\)/],
      ['{"input": [[1, 2], [3, 4]], "label": "two"}', /wide.jsonl:3: "label" is not a number/],
      ['{"input": [[1, 2], [3, 4]], "label": 1.5}', /wide.jsonl:3: "label" must be a class index/],
    ] as const) {
      await writeFile(join(dir, "wide.jsonl"), `${good}\n${good}\n${line}\n${good}\n`);
      const r = await cli("train", "--spec", join(dir, "spec.json"), "--data", join(dir, "wide.jsonl"));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    }
    await writeFile(join(dir, "range.jsonl"), '{"input": [[1, 2], [3, 4]], "label": 9}\n');
    const refused = await cli("train", "--spec", join(dir, "spec.json"), "--data", join(dir, "range.jsonl"));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /INVALID_ARGUMENT: chunk 0: labels\[0\] = 9 is out of range/);
    // 0 epochs and a learning rate of 0 are refused, not replaced by the defaults.
    const spec = JSON.parse(await readFile(join(dir, "spec.json"), "utf8"));
    for (const [change, pattern] of [
      [{ epochs: 0 }, /INVALID_ARGUMENT: epochs must be an integer from 1 to 10000, got 0/],
      [{ optimizer: { learningRate: 0 } }, /INVALID_ARGUMENT: optimizer.learning_rate must be greater than 0 and at most 10, got 0/],
    ] as const) {
      await writeFile(join(dir, "zero.json"), JSON.stringify({ ...spec, ...change }));
      const zero = await cli("train", "--spec", join(dir, "zero.json"), "--data", join(dir, "range.jsonl"));
      assert.equal(zero.code, 1, zero.stderr);
      assert.match(zero.stderr, pattern);
    }
  });

  it("refuses a spec with an unknown or misspelt key (exit 2), and so does the SDK (INVALID_ARGUMENT) before anything is sent", async () => {
    const spec = JSON.parse(await readFile(join(dir, "spec.json"), "utf8")) as Record<string, unknown>;
    const { epochs, ...rest } = spec;
    await writeFile(join(dir, "typo.json"), JSON.stringify({ ...rest, epoch: epochs }));
    const r = await cli("train", "--spec", join(dir, "typo.json"), "--data", join(dir, "train.jsonl"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--spec .*typo.json: spec: unknown key "epoch" \(did you mean "epochs"\?\)/);
    await writeFile(join(dir, "layer.json"), JSON.stringify({ ...spec, architecture: { input: { dims: [2, 2] }, layers: [{ type: "flatten" }, { type: "dense", unit: 3 }] } }));
    const layer = await cli("train", "--spec", join(dir, "layer.json"), "--data", join(dir, "train.jsonl"));
    assert.equal(layer.code, 2);
    assert.match(layer.stderr, /spec.architecture.layers\[1\] \(dense\): unknown key "unit" \(did you mean "units"\?\)/);
    const client = createClient({ address: server.address, retry: { maxAttempts: 1 } });
    try {
      const untyped = { ...rest, epoch: 3 } as unknown as TrainSpecInput;
      const before = (await client.jobs.list()).length;
      await assert.rejects(
        (async () => {
          for await (const _ of client.train(untyped, [])) void _;
        })(),
        (e) => e instanceof AiaasError && e.code === Code.INVALID_ARGUMENT && /unknown key "epoch"/.test(e.details),
      );
      assert.equal((await client.jobs.list()).length, before, "no job was created");
    } finally {
      client.close();
    }
  });

  it("jobs cancel prints the state after the cancel took effect; jobs watch | head ends quietly", async () => {
    const rows = Array.from({ length: 3000 }, (_, r) => JSON.stringify({ input: [[r % 3, 1], [0, (r % 7) / 7]], label: r % 3 })).join("\n");
    await writeFile(join(dir, "long.jsonl"), rows + "\n");
    await writeFile(join(dir, "long.json"), JSON.stringify({ model: "long", architecture: { input: { dims: [2, 2] }, layers: [{ type: "flatten" }, { type: "dense", units: 64 }, { type: "relu" }, { type: "dense", units: 3 }] }, epochs: 500, batchSize: 8 }));
    const training = cli("train", "--spec", join(dir, "long.json"), "--data", join(dir, "long.jsonl"), "--json");
    let id = "";
    const client = createClient({ address: server.address, retry: { maxAttempts: 1 } });
    try {
      for (let i = 0; i < 300 && !id; i++) {
        id = (await client.jobs.list()).find((j) => j.model === "long" && j.state === "running")?.id ?? "";
        if (!id) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(id, "the job runs");
      // `aiaas jobs watch … | head -n 2`: the watcher's stdout closes early; it must end quietly with 0.
      const piped = await run("bash", ["-c", `set -o pipefail; node server/dist/bin/aiaas.js jobs watch ${id} --address ${server.address} | head -n 2`], { cwd: root });
      assert.equal(piped.stdout.trim().split("\n").length, 2);
      assert.doesNotMatch(piped.stderr, /EPIPE|Error/, piped.stderr);
      const cancelled = await cli("jobs", "cancel", id);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.match(cancelled.stdout, new RegExp(`^${id}\\s+long\\s+cancelled`, "m"), "the state after the cancel took effect");
    } finally {
      client.close();
    }
    const trained = await training;
    assert.equal(trained.code, 1, "the train command reports the cancelled job");
  });
});
