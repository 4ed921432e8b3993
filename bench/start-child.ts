import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Starts a node process and resolves once a JSON line of its stdout yields a value (its address, say);
 * `entries` keeps every JSON line it printed (the operations port's line, say).
 */
export function startChild(
  argv: string[],
  pick: (entry: Record<string, unknown>) => string | undefined,
): Promise<{ child: ChildProcess; value: string; entries: Record<string, unknown>[] }> {
  // Servers started here keep no state (AIAAS_STATE_DIR=none unless set): the benches measure serving.
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, AIAAS_STATE_DIR: process.env.AIAAS_STATE_DIR ?? "none" } });
  const entries: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        entries.push(entry);
        const value = pick(entry);
        if (value) resolve({ child, value, entries });
      } catch {
        // not a JSON line
      }
    });
    child.once("exit", (code) => reject(new Error(`${argv.join(" ")} exited with ${code}`)));
  });
}

/** Resolves when the child has exited (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}
