import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crashPoint } from "../common/crash-points.js";
import { CONFIG_FILE, MODEL_FILE, checkModelName, listVersions, modelExists } from "./repository-layout.js";

export interface PublishFiles {
  /** model.onnx */
  readonly model: Uint8Array;
  /** Written beside model.onnx, e.g. metrics.json. */
  readonly extra?: Readonly<Record<string, string | Uint8Array>>;
  /** config.json for a model that does not exist yet. */
  readonly config?: object;
}

async function writeDurably(path: string, data: string | Uint8Array): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

const locks = new Map<string, Promise<unknown>>();

/**
 * Mutual exclusion across processes that share the repository (replicas on one volume): runs `work` while
 * holding the lock named `key`. Within one process the per-model queue below is enough.
 */
export type RepositoryLock = <T>(key: string, work: () => Promise<T>) => Promise<T>;

const inProcess: RepositoryLock = (_key, work) => work();

/**
 * Publishes a new version of a model: the files are written and synced in a hidden folder, which is then
 * renamed into place, so the repository never holds a half-written version, even after kill -9 (a leftover
 * hidden folder is no version and is removed by the next publish). Publishes of one model run one at a
 * time so each gets the next number. Returns the version.
 */
export function publishVersion(root: string, name: string, files: PublishFiles, tag: string, lock: RepositoryLock = inProcess): Promise<number> {
  checkModelName(name);
  const key = join(root, name);
  const run = (locks.get(key) ?? Promise.resolve()).then(() => lock(`publish ${key}`, async () => {
    const exists = await modelExists(root, name);
    const staging = exists ? join(root, name, `.publish-${tag}`) : join(root, `.publish-${tag}`);
    await rm(staging, { recursive: true, force: true });
    const versionDir = exists ? staging : join(staging, "1");
    await mkdir(versionDir, { recursive: true, mode: 0o700 });
    try {
      await writeDurably(join(versionDir, MODEL_FILE), files.model);
      for (const [file, data] of Object.entries(files.extra ?? {})) await writeDurably(join(versionDir, file), data);
      await syncDir(versionDir);
      if (!exists) {
        if (files.config) await writeDurably(join(staging, CONFIG_FILE), JSON.stringify(files.config, null, 2) + "\n");
        await syncDir(staging);
        crashPoint("publish-staged");
        await rename(staging, join(root, name));
        await syncDir(root);
        return 1;
      }
      crashPoint("publish-staged");
      const versions = await listVersions(root, name);
      const next = (versions[versions.length - 1] ?? 0) + 1;
      const target = join(root, name, String(next));
      // A folder of that number without model.onnx (not a version) would make rename fail; it is garbage.
      if (await stat(target).then(() => true, () => false)) await rm(target, { recursive: true, force: true });
      await rename(staging, target);
      await syncDir(dirname(target));
      return next;
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
  }));
  locks.set(key, run.catch(() => undefined));
  return run;
}

/**
 * Takes a published version out again (one that was written but must not serve, e.g. it did not load),
 * under the same per-model lock as publishing so a concurrent publish never sees it half-removed.
 */
export function withdrawVersion(root: string, name: string, version: number, lock: RepositoryLock = inProcess): Promise<void> {
  checkModelName(name);
  const key = join(root, name);
  const run = (locks.get(key) ?? Promise.resolve()).then(() => lock(`publish ${key}`, () => rm(join(root, name, String(version)), { recursive: true, force: true })));
  locks.set(key, run.catch(() => undefined));
  return run;
}

/**
 * Removes the staging folders a crash left (`.publish-*` at the root and in each model's folder): they are no
 * version and never were visible. Run at start, before anything publishes here; `minAgeMs` spares those that
 * may be another process's publish under way (a repository shared by replicas).
 */
export async function removeStaleStaging(root: string, minAgeMs = 0): Promise<string[]> {
  const removed: string[] = [];
  const young = async (path: string): Promise<boolean> =>
    minAgeMs > 0 && (await stat(path).then((s) => Date.now() - s.mtimeMs < minAgeMs, () => true));
  const sweep = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      if (entry.name.startsWith(".publish-")) {
        if (await young(join(dir, entry.name))) continue;
        await rm(join(dir, entry.name), { recursive: true, force: true });
        removed.push(join(dir, entry.name));
      } else if (dir === root && !entry.name.startsWith(".")) {
        await sweep(join(dir, entry.name));
      }
    }
  };
  await sweep(root);
  return removed;
}

/** The version of a model whose `marker` file (e.g. metrics.json) names `tag` (e.g. a job id), if one was published. */
export async function findPublishedVersion(root: string, name: string, marker: string, matches: (contents: string) => boolean): Promise<number | undefined> {
  if (!(await modelExists(root, name))) return undefined;
  for (const version of await listVersions(root, name)) {
    const text = await readFile(join(root, name, String(version), marker), "utf8").catch(() => "");
    if (text && matches(text)) return version;
  }
  return undefined;
}
