// Bundles the operations console (server/console) into server/dist/console: one script (uPlot included),
// one stylesheet, the page and its icon. Run by `npm run build`; nothing is fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = `${root}server/console/`;
const out = `${root}server/dist/console/`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [`${source}main.ts`],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "inline",
  outfile: `${out}app.js`,
  logLevel: "warning",
});
const css = [readFileSync(`${root}node_modules/uplot/dist/uPlot.min.css`, "utf8"), readFileSync(`${source}console.css`, "utf8")].join("\n");
writeFileSync(`${out}app.css`, css);
for (const file of ["index.html", "favicon.svg"]) copyFileSync(`${source}${file}`, `${out}${file}`);
