// Runs the built `aiaas` CLI as a user would, and reports its exit code and output (never throws on a non-zero exit).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function aiaas(...args: string[]): Promise<CliResult> {
  return run(process.execPath, ["server/dist/bin/aiaas.js", ...args], { cwd: root }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
