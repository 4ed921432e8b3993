// The SDK as a dependency: its public types hold at compile time, and the packed tarball installs into an
// app outside the workspace (offline, from the npm cache) and talks to a real server by package name.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
      const tarball = (await readdir(app)).find((f) => f.endsWith(".tgz"));
      assert.ok(tarball, "npm pack wrote a tarball");
      const { stdout: listing } = await run("tar", ["-tzf", join(app, tarball)]);
      assert.match(listing, /package\/dist\/index\.js/);
      assert.match(listing, /package\/dist\/index\.d\.ts/);
      assert.doesNotMatch(listing, /onnxruntime/);
      await writeFile(join(app, "package.json"), JSON.stringify({ name: "sdk-consumer", private: true, type: "module" }));
      await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--silent", join(app, tarball)], { cwd: app });
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
  });
});
