// `aiaas serve` as a real process on 127.0.0.1, port 0, no operations port, CPU: resolves with its address once
// it logs that it listens (rejects with its stderr if it exits first).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

const root = new URL("../..", import.meta.url).pathname;

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly address: string;
}

export function serveProcess(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    ["server/dist/bin/aiaas.js", "serve", "--host", "127.0.0.1", "--port", "0", "--http-port", "-1", "--providers", "cpu", ...args],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  let errors = "";
  child.stderr!.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes("aiaas listening")) resolve({ child, address: (JSON.parse(line) as { address: string }).address });
    });
    child.once("exit", (code) => reject(new Error(`aiaas serve exited with ${code}: ${errors}`)));
  });
}
