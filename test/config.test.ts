// Settings defined once: each of `aiaas serve`'s settings from its flag, its AIAAS_* variable, a YAML or JSON
// config file, or its default, in that order, with bad values named by where they came from.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SERVE_DEFAULTS, SERVE_SETTINGS, envOf, flagOf, loadServeConfig, readConfigFile } from "../server/src/config/index.js";
import { affineModel, writeRepository } from "./support/fixtures.js";

const root = new URL("..", import.meta.url).pathname;
const file = (values: Record<string, unknown>) => ({ name: "aiaas.yaml", values });

describe("serve configuration", () => {
  it("takes each setting from flag, then environment, then file, then default", () => {
    const sources = { flags: { port: "7001" }, env: { AIAAS_PORT: "7002", AIAAS_THREADS: "3" }, file: file({ port: 7003, threads: 4, "max-queue-size": 99 }) };
    const config = loadServeConfig(sources);
    assert.equal(config.port, 7001, "flag wins");
    assert.equal(config.threads, 3, "environment over file");
    assert.equal(config.maxQueueSize, 99, "file (kebab-case key) over default");
    assert.equal(config.idleTimeoutMs, SERVE_DEFAULTS.idleTimeoutMs, "default");
    assert.equal(loadServeConfig({ env: { AIAAS_PORT: "" } }).port, SERVE_DEFAULTS.port, "an empty variable is unset");
  });

  it("parses providers, booleans, optional numbers and log levels from strings and file values alike", () => {
    const fromEnv = loadServeConfig({ env: { AIAAS_PROVIDERS: "cuda", AIAAS_METRICS_PUBLIC: "true", AIAAS_INSTANCES: "3", AIAAS_LOG_LEVEL: "debug" } });
    assert.deepEqual(fromEnv.providers, ["cuda", "cpu"], "CPU is appended as the fallback");
    assert.equal(fromEnv.metricsPublic, true);
    assert.equal(fromEnv.instances, 3);
    assert.equal(fromEnv.logLevel, "debug");
    const fromFile = loadServeConfig({ file: file({ providers: ["cpu"], metricsPublic: false, instances: 2 }) });
    assert.deepEqual(fromFile.providers, ["cpu"]);
    assert.equal(fromFile.instances, 2);
    assert.equal(loadServeConfig({}).instances, undefined, "unset: the server picks min(2, cores)");
  });

  it("names the source of a bad value, an unknown file key, and settings that go together", () => {
    assert.throws(() => loadServeConfig({ flags: { port: "99999" } }), /--port "99999": expected an integer from 0 to 65535/);
    assert.throws(() => loadServeConfig({ env: { AIAAS_THREADS: "zero" } }), /AIAAS_THREADS "zero": expected an integer >= 1/);
    assert.throws(() => loadServeConfig({ file: file({ "log-level": "loud" }) }), /aiaas\.yaml: logLevel "loud": expected one of fatal/);
    assert.throws(() => loadServeConfig({ file: file({ prot: 1 }) }), /aiaas\.yaml: unknown setting "prot"/);
    assert.throws(() => loadServeConfig({ env: { AIAAS_PROVIDERS: "tpu" } }), /AIAAS_PROVIDERS: unknown execution provider "tpu"/);
    assert.throws(() => loadServeConfig({ flags: { tlsCert: "a.pem" } }), /--tls-cert and --tls-key go together/);
  });

  it("derives every flag and variable name from the setting's key", () => {
    assert.equal(flagOf("maxQueueSize"), "--max-queue-size");
    assert.equal(envOf("maxQueueSize"), "AIAAS_MAX_QUEUE_SIZE");
    const flags = Object.keys(SERVE_SETTINGS).map(flagOf);
    assert.equal(new Set(flags).size, flags.length);
    for (const f of ["--models", "--port", "--keys", "--http-port", "--log-level", "--max-train-data-bytes"]) assert.ok(flags.includes(f), f);
  });

  it("reads YAML and JSON files and refuses one that is not a mapping", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-config-"));
    try {
      await writeFile(join(dir, "a.yaml"), "port: 7100\nmax-queue-size: 12\n");
      await writeFile(join(dir, "a.json"), JSON.stringify({ port: 7200 }));
      await writeFile(join(dir, "list.yaml"), "- 1\n- 2\n");
      await writeFile(join(dir, "broken.json"), "{ port: ");
      assert.equal(loadServeConfig({ file: await readConfigFile(join(dir, "a.yaml")) }).maxQueueSize, 12);
      assert.equal(loadServeConfig({ file: await readConfigFile(join(dir, "a.json")) }).port, 7200);
      await assert.rejects(readConfigFile(join(dir, "list.yaml")), /must hold a mapping/);
      await assert.rejects(readConfigFile(join(dir, "broken.json")), /broken\.json is not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("aiaas serve --config", () => {
  let dir: string;
  let repo: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-config-cli-"));
    repo = join(dir, "models");
    await writeRepository(repo, { affine: { model: affineModel() } });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const run = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, ["server/dist/bin/aiaas.js", ...args], { cwd: root, env: { ...process.env, ...env } }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );

  it("serves with the file's settings", async () => {
    const config = join(dir, "serve.yaml");
    await writeFile(config, `models: ${repo}\nhost: 127.0.0.1\nport: 0\nhttp-port: -1\nproviders: cpu\n`);
    const child = spawn(process.execPath, ["server/dist/bin/aiaas.js", "serve", "--config", config], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const listening = out.split("\n").find((l) => l.includes("aiaas listening"));
          if (listening) resolve(listening);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      assert.match(JSON.parse(line).address, /^127\.0\.0\.1:\d+$/, "host from the file");
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("a flag and an AIAAS_* variable win over the file; a bad variable is named, exit 2", async () => {
    const holder = createServer();
    const held = await new Promise<number>((resolve) => holder.listen(0, "127.0.0.1", () => resolve((holder.address() as { port: number }).port)));
    try {
      const config = join(dir, "held.yaml");
      await writeFile(config, `models: ${repo}\nhost: 127.0.0.1\nport: 1\nhttp-port: -1\nproviders: cpu\n`);
      const byEnv = await run(["serve", "--config", config], { AIAAS_PORT: String(held) });
      assert.equal(byEnv.code, 1, byEnv.stderr);
      assert.match(byEnv.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${held}: the port is in use`), "AIAAS_PORT over the file's port");
      const byFlag = await run(["serve", "--config", config, "--port", String(held)], { AIAAS_PORT: "1" });
      assert.match(byFlag.stderr, new RegExp(`127\\.0\\.0\\.1:${held}: the port is in use`), "--port over AIAAS_PORT");
      const bad = await run(["serve", "--config", config], { AIAAS_MAX_QUEUE_SIZE: "lots" });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: AIAAS_MAX_QUEUE_SIZE "lots": expected an integer >= 1$/m);
    } finally {
      holder.close();
    }
  });
});
