// `aiaas serve` and the CLI's conventions as a new user meets them: one clear line per startup problem,
// no stack trace, exit 2 for usage and 1 for runtime failures, the port checked before any model loads.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { aiaas, type CliResult } from "./support/cli.js";
import { affineModel, writeRepository } from "./support/fixtures.js";

/** stderr is exactly one line (a usage hint may follow usage errors) and no stack frame. */
function oneLine(r: CliResult, pattern: RegExp): void {
  const lines = r.stderr.trim().split("\n").filter((l) => l !== "(run with --help for usage)");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

describe("aiaas serve: startup problems", () => {
  let dir: string;
  let repo: string;
  let holder: Server;
  let heldPort: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-serve-"));
    repo = join(dir, "models");
    await writeRepository(repo, { affine: { model: affineModel() } });
    holder = createServer();
    heldPort = await new Promise<number>((resolve) => holder.listen(0, "127.0.0.1", () => resolve((holder.address() as { port: number }).port)));
  });
  after(async () => {
    holder.close();
    await rm(dir, { recursive: true, force: true });
  });
  const serve = (...args: string[]) => aiaas("serve", "--host", "127.0.0.1", "--providers", "cpu", "--http-port", "-1", ...args);

  it("a missing --models folder is one line and exit 2", async () => {
    const r = await serve("--models", join(dir, "nope"), "--port", "0");
    assert.equal(r.code, 2);
    oneLine(r, /^error: the model repository .*nope does not exist; create it .* or point --models at one$/);
  });

  it("a --models that is a file is one line and exit 2", async () => {
    await writeFile(join(dir, "file"), "x");
    const r = await serve("--models", join(dir, "file"), "--port", "0");
    assert.equal(r.code, 2);
    oneLine(r, /is not a folder/);
  });

  it("a port in use is one line and exit 1, reported before any model loads", async () => {
    const r = await serve("--models", repo, "--port", String(heldPort));
    assert.equal(r.code, 1);
    oneLine(r, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${heldPort}: the port is in use .* pick another port with --port$`));
    assert.doesNotMatch(r.stdout, /loading models|runs on CPU/, "no model was loaded");
  });

  it("the operations port in use is one line naming --http-port", async () => {
    const r = await aiaas("serve", "--host", "127.0.0.1", "--providers", "cpu", "--models", repo, "--port", "0", "--http-port", String(heldPort));
    assert.equal(r.code, 1);
    oneLine(r, /the port is in use .* --http-port$/);
    assert.doesNotMatch(r.stdout, /runs on CPU/, "no model was loaded");
  });

  it("bad flags and values exit 2 with one line", async () => {
    for (const [args, pattern] of [
      [["--bogus"], /unknown option '--bogus'/],
      [["--port", "99999"], /--port .* expected an integer from 0 to 65535/],
      [["--threads", "zero"], /--threads .* expected an integer >= 1/],
      [["--providers", "tpu"], /tpu/],
      [["--tls-cert", join(dir, "no-cert.pem"), "--tls-key", join(dir, "no-key.pem"), "--models", repo], /no-cert\.pem does not exist/],
    ] as const) {
      const r = await serve(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      oneLine(r, pattern);
    }
  });
});

describe("the aiaas command", () => {
  it("--version prints the package version and exits 0", async () => {
    const r = await aiaas("--version");
    assert.equal(r.code, 0);
    const { version } = JSON.parse(await readFile(new URL("../server/package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(r.stdout.trim(), version);
  });

  it("bare `aiaas`, `aiaas jobs` and `aiaas keys` print their help on stdout and exit 0, as kubectl does", async () => {
    for (const args of [[], ["jobs"], ["keys"]]) {
      const r = await aiaas(...args);
      assert.equal(r.code, 0, `aiaas ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: aiaas/m);
      assert.equal(r.stderr, "");
    }
  });

  it("every command's help has examples, and --address names AIAAS_ADDRESS", async () => {
    const commands = [["serve"], ["models"], ["predict"], ["train"], ["jobs"], ["jobs", "list"], ["jobs", "get"], ["jobs", "cancel"], ["jobs", "watch"], ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"]];
    for (const args of commands) {
      const r = await aiaas(...args, "--help");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Examples:\n {2}\$ aiaas /m, `aiaas ${args.join(" ")} --help has examples`);
      const flat = r.stdout.replace(/\s+/g, " ");
      if (flat.includes("--address <host:port>")) assert.match(flat, /--address <host:port> [^-]*env: AIAAS_ADDRESS/, `aiaas ${args.join(" ")}: --address names AIAAS_ADDRESS`);
    }
    assert.match((await aiaas("predict", "--help")).stdout, /"fp32_data"/, "predict --help shows the input file format");
    assert.match((await aiaas("train", "--help")).stdout, /\{"input": \[\.\.\.\], "label": 3\}/, "train --help shows the row format");
  });

  it("an unknown command or a missing required option exits 2", async () => {
    const unknown = await aiaas("servee");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'servee'/);
    const missing = await aiaas("predict", "mnist-linear");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--input/);
  });
});
