// The SDK as a dependency: its public types hold at compile time, and the packed tarball installs into an
// app outside the workspace (from the npm cache where it can, else the registry: a cold cache after `npm ci`
// lacks the registry metadata an --offline install needs) and talks to a real server by package name.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { affineModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

describe("the SDK package", () => {
  it("passes its compile-time type tests (wrong tensor types fail to compile)", async () => {
    const result = await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "sdk/type-tests"], { cwd: root }).then(
      () => ({ ok: true, out: "" }),
      (e: { stdout: string }) => ({ ok: false, out: e.stdout }),
    );
    assert.ok(result.ok, result.out);
  });

  describe("packed and installed into an app", () => {
    let h: Harness;
    let app: string;
    before(async () => {
      h = await startHarness({ affine: { model: affineModel() } });
      app = await mkdtemp(join(tmpdir(), "aiaas-app-"));
    });
    after(async () => {
      await h.close();
      await rm(app, { recursive: true, force: true });
    });

    it("imports @aiaas/sdk by name and predicts", { timeout: 180_000 }, async () => {
      await run("npm", ["pack", "--workspace", "sdk", "--pack-destination", app, "--silent"], { cwd: root });
      const tarball = (await readdir(app)).find((f) => f.endsWith(".tgz") && f.includes("sdk"));
      assert.ok(tarball, "npm pack wrote a tarball");
      const { stdout: listing } = await run("tar", ["-tzf", join(app, tarball)]);
      assert.match(listing, /package\/dist\/index\.js/);
      assert.match(listing, /package\/dist\/index\.d\.ts/);
      assert.doesNotMatch(listing, /onnxruntime/);
      await writeFile(join(app, "package.json"), JSON.stringify({ name: "sdk-consumer", private: true, type: "module" }));
      // --loglevel=error rather than --silent: a failure shows npm's own error.
      await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", join(app, tarball)], { cwd: app });
      const { stdout: tree } = await run("npm", ["ls", "--all", "--parseable"], { cwd: app });
      assert.doesNotMatch(tree, /onnxruntime/, "the SDK has no native dependency");
      await writeFile(
        join(app, "main.mjs"),
        `import { createClient, Tensor, AiaasError } from "@aiaas/sdk";
const client = createClient({ address: process.env.AIAAS_ADDRESS });
const result = await client.predict("affine", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
const missing = await client.predict("missing", { x: Tensor.float32([1, 4], [0, 0, 0, 0]) }).catch((e) => e);
console.log(JSON.stringify({ y: [...result.outputs.y.data], error: missing instanceof AiaasError ? missing.code : null }));
client.close();
`,
      );
      const { stdout } = await run(process.execPath, ["main.mjs"], { cwd: app, env: { ...process.env, AIAAS_ADDRESS: h.server.address } });
      assert.deepEqual(JSON.parse(stdout), { y: [3, 6, 9, 12], error: 5 });
    });

    it("installs @aiaas/server beside it and serves with its `aiaas serve` command, reflection included", { timeout: 180_000 }, async () => {
      await run("npm", ["pack", "--workspace", "server", "--pack-destination", app, "--silent"], { cwd: root });
      const tarballs = (await readdir(app)).filter((f) => f.endsWith(".tgz")).map((f) => join(app, f));
      assert.equal(tarballs.length, 2);
      const { stdout: listing } = await run("tar", ["-tzf", tarballs.find((t) => t.includes("server"))!]);
      assert.match(listing, /package\/proto\/inference\/grpc_service\.proto/, "the contracts ship for reflection");
      // An app skips onnxruntime-node's CUDA download the way this repository does: npm's allowScripts.
      await writeFile(join(app, "package.json"), JSON.stringify({ name: "sdk-consumer", private: true, type: "module", allowScripts: { "onnxruntime-node": false, protobufjs: false } }));
      // The server's ranges may resolve newer than the workspace's lock: prefer the cache, fetch from the registry if needed.
      await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs], { cwd: app });
      // The `aiaas` command npm linked for the installed package (npx would put a process between us and it).
      const server = spawn(join(app, "node_modules/.bin/aiaas"), ["serve", "--models", h.root, "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu"], {
        cwd: app,
        stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        const address = await new Promise<string>((resolve, reject) => {
          createInterface({ input: server.stdout! }).on("line", (line) => {
            const entry = JSON.parse(line) as { address?: string };
            if (entry.address) resolve(entry.address);
          });
          server.once("exit", (code) => reject(new Error(`npx aiaas serve exited with ${code}`)));
        });
        const { stdout } = await run(join(root, "node_modules/.bin/buf"), ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", `http://${address}`]);
        assert.match(stdout, /^aiaas\.v1\.Inference$/m);
        assert.match(stdout, /^inference\.GRPCInferenceService$/m);
      } finally {
        const exited = new Promise((resolve) => server.once("exit", resolve));
        server.kill("SIGTERM");
        await exited;
      }
    });
  });
});
