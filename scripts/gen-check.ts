// `npm run gen:check`: regenerates the ts-proto code into a temporary folder and fails when it differs
// from the committed sdk/src/gen, i.e. when proto/ changed without `npm run gen`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const committed = "sdk/src/gen";
const out = mkdtempSync(join(tmpdir(), "aiaas-gen-"));
try {
  execFileSync("npx", ["buf", "generate", "--output", out], { stdio: ["ignore", "ignore", "inherit"] });
  const fresh = join(out, committed);
  const list = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? list(path) : [path];
    });
  const a = new Set(list(committed).map((p) => relative(committed, p)));
  const b = new Set(list(fresh).map((p) => relative(fresh, p)));
  const problems: string[] = [];
  for (const f of b) if (!a.has(f)) problems.push(`missing from ${committed}: ${f}`);
  for (const f of a) if (!b.has(f)) problems.push(`not generated from proto/: ${committed}/${f}`);
  for (const f of a) {
    if (b.has(f) && !readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f)))) problems.push(`out of date: ${committed}/${f}`);
  }
  if (problems.length) {
    console.error(`generated code disagrees with proto/ (run \`npm run gen\`):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`gen:check: ${a.size} generated files match proto/`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
