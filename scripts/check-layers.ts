// The layer rules of docs/architecture.md, checked: which part of server/src may import which, where the
// transport (grpc-js) and ONNX Runtime may be imported, and no import cycle between modules (type-only
// imports count: a cycle of types is a cycle of concepts). `npm run check:layers`; test/layers.test.ts.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, normalize, relative, sep } from "node:path";

/** The parts of server/src and the parts each may import ("(root)" is the assembly: server.ts, index.ts, cuda-probe.ts). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  common: [],
  telemetry: ["common"],
  runtime: ["common"],
  batching: ["common", "runtime", "telemetry"],
  auth: ["common", "state"],
  state: ["common"],
  repository: ["common", "runtime"],
  serving: ["common", "telemetry", "runtime", "batching", "repository"],
  training: ["common", "runtime", "repository", "serving", "state"],
  http: ["common", "telemetry", "serving", "auth"],
  rpc: ["common", "telemetry", "runtime", "batching", "auth", "repository", "serving", "training"],
  cli: ["common", "auth"],
  config: ["common", "runtime", "auth"],
  "(root)": ["common", "telemetry", "runtime", "batching", "auth", "repository", "serving", "training", "rpc", "http", "config", "state"],
  bin: ["(root)", "cli", "common", "config", "telemetry"],
};

/** Packages only some parts may import: the transport stays in rpc/ (and the CLI, a client). */
export const PACKAGES: Readonly<Record<string, readonly string[]>> = {
  "@grpc/grpc-js": ["rpc", "cli", "bin", "(root)"],
  "onnxruntime-node": ["runtime", "training"],
};

const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^;]*?\s+from\s+)?["']([^"']+)["']/gm;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

const partOf = (root: string, file: string): string => {
  const rel = relative(root, file).split(sep);
  return rel.length > 1 ? rel[0]! : "(root)";
};

/** The violations in a source tree (empty when it keeps the rules), as lines a reader can act on. */
export async function checkLayers(root: string): Promise<string[]> {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of await sources(root)) {
    const from = partOf(root, file);
    if (!ALLOWED[from]) problems.push(`${relative(root, file)}: part "${from}" is not in the layer rules; add it to docs/architecture.md and scripts/check-layers.ts`);
    const edges: string[] = [];
    for (const [, spec] of (await readFile(file, "utf8")).matchAll(IMPORT)) {
      if (spec!.startsWith(".")) {
        const target = normalize(join(dirname(file), spec!)).replace(/\.js$/, ".ts");
        edges.push(target);
        const to = partOf(root, target);
        if (to !== from && !(ALLOWED[from] ?? []).includes(to)) problems.push(`${relative(root, file)} imports ${relative(root, target)}: ${from}/ may not import ${to}/`);
      } else {
        const pkg = spec!.startsWith("@") ? spec!.split("/").slice(0, 2).join("/") : spec!.split("/")[0]!;
        const allowed = PACKAGES[pkg];
        if (allowed && !allowed.includes(from)) problems.push(`${relative(root, file)} imports ${pkg}: only ${allowed.join(", ")} may`);
      }
    }
    graph.set(normalize(file), edges);
  }
  for (const cycle of cycles(graph)) problems.push(`import cycle: ${cycle.map((f) => relative(root, f)).join(" -> ")}`);
  return problems;
}

/** Each strongly connected group of modules of more than one (Tarjan), as a path through it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1) found.push([...group.reverse(), group[0]!]);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(dirname(new URL(import.meta.url).pathname), "..", "server", "src");
  const problems = await checkLayers(root);
  for (const p of problems) console.error(p);
  console.log(problems.length ? `check:layers: ${problems.length} violation(s)` : "check:layers: the layer rules of docs/architecture.md hold");
  process.exitCode = problems.length ? 1 : 0;
}
