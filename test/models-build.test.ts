// `npm run models` (scripts/build-models.ts) builds the embedded repository twice into scratch folders: the
// two builds are the same bytes, and the held-out accuracies they print are the ones the README states.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const FILES = ["mnist-linear/config.json", "mnist-linear/1/model.onnx", "mnist-cnn/config.json", "mnist-cnn/1/model.onnx"];

async function build(): Promise<{ dir: string; stdout: string }> {
  const dir = await mkdtemp(join(tmpdir(), "aiaas-models-build-"));
  const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/build-models.ts", dir], { cwd: root, env: { ...process.env, AIAAS_STATE_DIR: "none" }, maxBuffer: 1 << 24 });
  return { dir, stdout };
}

test("npm run models reproduces its models byte for byte, with the held-out accuracies the README states", { timeout: 600_000 }, async (t) => {
  const [a, b] = [await build(), await build()];
  try {
    for (const f of FILES) assert.ok((await readFile(join(a.dir, f))).equals(await readFile(join(b.dir, f))), `${f} differs between two builds`);
    // The README's table states what the build prints.
    const readme = await readFile(join(root, "README.md"), "utf8");
    const linear = /softmax regression fitted on the `mnist` package's digits \(([\d.]+)% of 2,000 held out\)/.exec(readme)![1];
    const cnn = /5 epochs on 8,000 digits, ([\d.]+)% of 2,000 held out/.exec(readme)![1];
    assert.match(a.stdout, new RegExp(`mnist-linear: held-out accuracy ${linear!.replace(".", "\\.")}% on 2000 digits`), a.stdout);
    const byPredict = /held-out accuracy of mnist-cnn version 1 by Predict: ([\d.]+)% of 2000 digits/.exec(a.stdout)?.[1];
    assert.equal(Number(byPredict).toFixed(1), cnn, a.stdout);
    // Diagnostic only: whether this machine's build is also the committed one (ONNX Runtime's float rounding
    // may differ between CPU kinds).
    const same = await Promise.all(FILES.map(async (f) => (await readFile(join(a.dir, f))).equals(await readFile(join(root, "models", f)))));
    t.diagnostic(`the committed models/ ${same.every(Boolean) ? "equals" : "differs from"} this machine's build (${FILES.filter((_, i) => !same[i]).join(", ") || "all equal"})`);
  } finally {
    await rm(a.dir, { recursive: true, force: true });
    await rm(b.dir, { recursive: true, force: true });
  }
});
