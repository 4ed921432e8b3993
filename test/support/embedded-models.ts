// The embedded repository as the project ships it, copied to a temporary folder: tests never read the
// tracked models/, where the README's flows publish new versions.
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const root = new URL("../..", import.meta.url).pathname;

/** The files of models/ that git tracks; in a tree without git, version 1 of each model and its config. */
async function shippedFiles(): Promise<string[]> {
  try {
    const { stdout } = await promisify(execFile)("git", ["ls-files", "-z", "models"], { cwd: root });
    const files = stdout.split("\0").filter(Boolean);
    if (files.length) return files;
  } catch {
    // not a git checkout
  }
  const files: string[] = [];
  for (const model of await readdir(join(root, "models"))) {
    for (const file of ["config.json", "1/model.onnx"]) files.push(join("models", model, file));
  }
  return files;
}

export interface EmbeddedModels {
  /** The copy's models folder. */
  readonly dir: string;
  remove(): Promise<void>;
}

export async function copyEmbeddedModels(): Promise<EmbeddedModels> {
  const base = await mkdtemp(join(tmpdir(), "aiaas-embedded-"));
  for (const file of await shippedFiles()) {
    const target = join(base, file);
    await mkdir(dirname(target), { recursive: true });
    await cp(join(root, file), target).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  return { dir: join(base, "models"), remove: () => rm(base, { recursive: true, force: true }) };
}
