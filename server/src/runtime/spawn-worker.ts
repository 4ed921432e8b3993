import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread on a module beside `base` (`name` without extension). Built, that is the .js file;
 * run from sources under tsx, the .ts file, loaded through tsx registered inside the worker (Node 20 does not
 * apply `--import tsx` from execArgv to workers).
 */
export function spawnWorker(base: string, name: string, workerData: unknown): Worker {
  const ext = extname(fileURLToPath(base));
  const entry = new URL(`./${name}${ext}`, base);
  if (ext !== ".ts") return new Worker(entry, { workerData });
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
