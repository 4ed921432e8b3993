// The layer rules of docs/architecture.md hold in server/src, and the checker catches each kind of break.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { checkLayers } from "../scripts/check-layers.js";
import { findLongFunctions } from "../scripts/check-function-length.js";

const root = new URL("..", import.meta.url).pathname;

describe("layer rules", () => {
  it("hold in server/src: allowed imports between parts, grpc-js only at the edge, no cycle", async () => {
    assert.deepEqual(await checkLayers(join(root, "server", "src")), []);
  });

  it("a forbidden part import, a misplaced package and a cycle are each reported", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-layers-"));
    try {
      const files: Record<string, string> = {
        "common/errors.ts": "export const x = 1;\n",
        // batching may not import rpc (upward), nor the transport.
        "batching/batcher.ts": 'import { y } from "../rpc/handlers.js";\nimport { status } from "@grpc/grpc-js";\nexport const b = y + status.OK;\n',
        "rpc/handlers.ts": 'import { x } from "../common/errors.js";\nexport const y = x;\n',
        // a type-only cycle inside one part
        "training/a.ts": 'import type { B } from "./b.js";\nexport type A = B | 1;\n',
        "training/b.ts": 'import type {\n  A,\n} from "./a.js";\nexport type B = A | 2;\n',
      };
      for (const [file, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, file)), { recursive: true });
        await writeFile(join(dir, file), text);
      }
      const problems = await checkLayers(dir);
      assert.ok(problems.some((p) => /batching\/batcher\.ts imports rpc\/handlers\.ts: batching\/ may not import rpc\//.test(p)), problems.join("\n"));
      assert.ok(problems.some((p) => /batching\/batcher\.ts imports @grpc\/grpc-js: only rpc, cli, bin, \(root\) may/.test(p)), problems.join("\n"));
      assert.ok(problems.some((p) => /import cycle: training\/(a|b)\.ts -> training\/(a|b)\.ts -> training\/(a|b)\.ts/.test(p)), problems.join("\n"));
      assert.equal(problems.length, 3, problems.join("\n"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("no function in server/src or sdk/src (generated code aside) is over 100 lines, and a long one is reported", async () => {
    assert.deepEqual(findLongFunctions(root, 100), []);
    const dir = await mkdtemp(join(tmpdir(), "aiaas-functions-"));
    try {
      await mkdir(join(dir, "server", "src", "gen"), { recursive: true });
      await mkdir(join(dir, "sdk", "src"), { recursive: true });
      const body = Array.from({ length: 101 }, (_, i) => `  const v${i} = ${i};`).join("\n");
      await writeFile(join(dir, "server", "src", "long.ts"), `export function tooLong(): void {\n${body}\n}\nexport const ok = (): number => 1;\n`);
      await writeFile(join(dir, "server", "src", "gen", "generated.ts"), `export function generated(): void {\n${body}\n}\n`);
      const found = findLongFunctions(dir, 100);
      assert.deepEqual(found.map((f) => [f.file, f.name, f.lines]), [["server/src/long.ts", "tooLong", 103]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
