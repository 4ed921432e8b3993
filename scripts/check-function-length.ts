// Fails when a function in server/src or sdk/src (generated code aside) is longer than the limit:
// issue #13's "no function over ~100 lines", kept true by CI.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const LIMIT = Number(process.env.AIAAS_MAX_FUNCTION_LINES ?? 100);
const ROOTS = ["server/src", "sdk/src"];
const GENERATED = /\/gen\//;

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

function functionName(node: ts.Node): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return "(anonymous)";
}

function isFunction(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node) || ts.isConstructorDeclaration(node) || ts.isGetAccessor(node);
}

/** Every function longer than `limit` lines (its whole text, nested functions included). */
export function findLongFunctions(root: string, limit = LIMIT): LongFunction[] {
  const found: LongFunction[] = [];
  for (const base of ROOTS) {
    for (const file of sourceFiles(join(root, base))) {
      if (GENERATED.test(file)) continue;
      const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (isFunction(node) && node.body) {
          const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          if (end - start + 1 > limit) {
            found.push({ file: relative(root, file), name: functionName(node), line: start + 1, lines: end - start + 1 });
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
  }
  return found.sort((a, b) => b.lines - a.lines);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const limit = Number(process.argv[2] ?? LIMIT);
  const long = findLongFunctions(process.cwd(), limit);
  for (const f of long) console.log(`${f.file}:${f.line} ${f.name} is ${f.lines} lines (limit ${limit})`);
  if (long.length > 0) process.exit(1);
  console.log(`no function over ${limit} lines`);
}
