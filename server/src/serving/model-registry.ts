import type { Logger } from "pino";
import { failedPrecondition, invalidArgument, notFound, unavailable } from "../common/errors.js";
import { loadVersion, type LoadedVersion } from "./loaded-version.js";
import { parseModelConfig, selectVersions, type ModelConfig, type ServingDefaults } from "../repository/index.js";
import { checkModelName, listModelNames, listVersions, modelExists, modelPath, readConfigJson } from "../repository/index.js";

export type ModelStateName = "loading" | "ready" | "unloading" | "unloaded" | "failed";

export interface VersionStatus {
  readonly version: number;
  readonly state: ModelStateName;
  readonly reason: string;
  readonly loaded: LoadedVersion | undefined;
}

/** What GetModel and ListModels report about one model. */
export interface ModelStatus {
  readonly name: string;
  readonly state: ModelStateName;
  readonly reason: string;
  readonly config: ModelConfig | undefined;
  /** Newest first. */
  readonly versions: readonly VersionStatus[];
}

/**
 * The models the server knows: what is loaded from the repository, in which state, and which version a
 * request reaches. Loads and unloads of one model run one at a time; a reload brings the new versions up
 * before the old ones drain, so no request fails during it.
 */
export interface ModelRegistry {
  readonly root: string;
  loadAll(): Promise<void>;
  load(name: string): Promise<ModelStatus>;
  unload(name: string): Promise<ModelStatus>;
  list(): ModelStatus[];
  /** Whether the model is known (loaded, loading, failed or unloaded by request) or in the repository. */
  has(name: string): Promise<boolean>;
  /** Whether the model is known, without looking at the disk (for the synchronous request path). */
  knows(name: string): boolean;
  /** NOT_FOUND for a model that is neither known nor on disk. */
  status(name: string): Promise<ModelStatus>;
  /** The version a request runs on; synchronous so no reload can slip between resolving and queueing. */
  resolve(name: string, version: string): LoadedVersion;
  close(): Promise<void>;
}

interface Entry {
  name: string;
  state: ModelStateName;
  reason: string;
  config: ModelConfig | undefined;
  versions: Map<number, VersionStatus>;
  /** Serializes load/unload of this model. */
  lock: Promise<unknown>;
}

/** `tenant`: the tenant whose tree this is (absent: the public repository), a label of its telemetry. */
export function createModelRegistry(root: string, defaults: ServingDefaults, logger: Logger, tenant?: string): ModelRegistry {
  const entries = new Map<string, Entry>();
  const retiring = new Set<Promise<void>>();

  const entryOf = (name: string): Entry => {
    let entry = entries.get(name);
    if (!entry) {
      entry = { name, state: "unloaded", reason: "", config: undefined, versions: new Map(), lock: Promise.resolve() };
      entries.set(name, entry);
    }
    return entry;
  };

  const snapshot = (entry: Entry): ModelStatus => ({
    name: entry.name,
    state: entry.state,
    reason: entry.reason,
    config: entry.config,
    versions: [...entry.versions.values()].sort((a, b) => b.version - a.version),
  });

  const exclusive = <T>(entry: Entry, work: () => Promise<T>): Promise<T> => {
    const run = entry.lock.then(work, work);
    entry.lock = run.catch(() => undefined);
    return run;
  };

  /** Drains and releases versions in the background; shutdown waits for them. */
  const retire = (versions: Iterable<LoadedVersion>): void => {
    for (const v of versions) {
      const done = v.close().catch((error) => logger.error({ err: error, model: v.label }, `failed to release ${v.label}`));
      retiring.add(done);
      void done.finally(() => retiring.delete(done));
    }
  };

  const doLoad = async (entry: Entry): Promise<ModelStatus> => {
    const name = entry.name;
    const previous = entry.versions;
    const wasServing = [...previous.values()].some((v) => v.state === "ready");
    if (!wasServing) entry.state = "loading";
    let config: ModelConfig;
    let chosen: number[];
    try {
      config = parseModelConfig(await readConfigJson(root, name), defaults);
      const onDisk = await listVersions(root, name);
      chosen = selectVersions(config.versionPolicy, onDisk);
      if (chosen.length === 0) {
        throw new Error(onDisk.length ? `version_policy selects none of the versions on disk (${onDisk.join(", ")})` : `no version folder with a ${"model.onnx"} (expected ${name}/1/model.onnx)`);
      }
    } catch (error) {
      const reason = (error as Error).message;
      logger.error({ model: name }, `model ${name} failed to load: ${reason}`);
      if (wasServing) {
        entry.reason = `reload failed, still serving the previous versions: ${reason}`;
      } else {
        entry.state = "failed";
        entry.reason = reason;
        entry.config = undefined;
      }
      return snapshot(entry);
    }
    for (const version of chosen) {
      if (!previous.has(version)) entry.versions.set(version, { version, state: "loading", reason: "", loaded: undefined });
    }
    const results = await Promise.allSettled(chosen.map((v) => loadVersion(name, v, modelPath(root, name, v), config, logger, tenant)));
    const next = new Map<number, VersionStatus>();
    const replaced: LoadedVersion[] = [];
    results.forEach((result, i) => {
      const version = chosen[i];
      const old = previous.get(version);
      if (result.status === "fulfilled") {
        next.set(version, { version, state: "ready", reason: "", loaded: result.value });
        if (old?.loaded) replaced.push(old.loaded);
      } else {
        const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
        logger.error({ model: `${name}:${version}` }, `${name}:${version} failed to load: ${reason}`);
        if (old?.loaded) {
          next.set(version, { ...old, reason: `reload failed, still serving the previous file: ${reason}` });
        } else {
          next.set(version, { version, state: "failed", reason, loaded: undefined });
        }
      }
    });
    // Versions the policy no longer selects retire once their requests finish.
    for (const [version, old] of previous) if (!next.has(version) && old.loaded) replaced.push(old.loaded);
    entry.versions = next;
    entry.config = config;
    const ready = [...next.values()].filter((v) => v.state === "ready");
    entry.state = ready.length ? "ready" : "failed";
    entry.reason = ready.length ? "" : [...next.values()].map((v) => `version ${v.version}: ${v.reason}`).join("; ");
    retire(replaced);
    if (ready.length) logger.info({ model: name, versions: ready.map((v) => v.version) }, `model ${name} is ready (versions ${ready.map((v) => v.version).join(", ")})`);
    return snapshot(entry);
  };

  const doUnload = async (entry: Entry): Promise<ModelStatus> => {
    const loaded = [...entry.versions.values()].flatMap((v) => (v.loaded ? [v.loaded] : []));
    entry.state = "unloading";
    entry.versions = new Map([...entry.versions].map(([k, v]) => [k, { ...v, state: "unloading" as const }]));
    await Promise.all(loaded.map((v) => v.close()));
    entry.versions = new Map([...entry.versions].map(([k, v]) => [k, { ...v, state: "unloaded" as const, reason: "unloaded by request", loaded: undefined }]));
    entry.state = "unloaded";
    entry.reason = "unloaded by request";
    logger.info({ model: entry.name }, `model ${entry.name} unloaded`);
    return snapshot(entry);
  };

  return {
    root,
    async loadAll() {
      const names = await listModelNames(root);
      await Promise.all(names.map((name) => this.load(name)));
    },
    async load(name) {
      checkModelName(name);
      if (!entries.has(name) && !(await modelExists(root, name))) throw notFound(`model "${name}" is not in the repository`);
      const entry = entryOf(name);
      return exclusive(entry, () => doLoad(entry));
    },
    async unload(name) {
      checkModelName(name);
      const entry = entries.get(name);
      if (!entry) throw notFound(`model "${name}" is not loaded and not known`);
      return exclusive(entry, () => doUnload(entry));
    },
    async has(name) {
      return entries.has(name) || (await modelExists(root, name));
    },
    knows(name) {
      return entries.has(name);
    },
    list() {
      return [...entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map(snapshot);
    },
    async status(name) {
      checkModelName(name);
      const entry = entries.get(name);
      if (entry) return snapshot(entry);
      if (await modelExists(root, name)) {
        return { name, state: "unloaded", reason: "in the repository but not loaded; call LoadModel", config: undefined, versions: [] };
      }
      throw notFound(`model "${name}" not found`);
    },
    resolve(name, version) {
      const entry = entries.get(name);
      if (!entry) {
        if (name === "") throw invalidArgument("the request names no model");
        checkModelName(name); // a name that could not be a folder is a bad request, not a missing model
        throw notFound(`model "${name}" not found`);
      }
      if (entry.state === "unloaded" || entry.state === "unloading") {
        throw failedPrecondition(`model "${name}" is not loaded; load it with LoadModel`);
      }
      let target: VersionStatus | undefined;
      if (version === "") {
        for (const v of entry.versions.values()) if (v.state === "ready" && (!target || v.version > target.version)) target = v;
        if (!target) {
          if (entry.state === "loading") throw unavailable(`model "${name}" is still loading; retry shortly`);
          throw failedPrecondition(`model "${name}" has no ready version: ${entry.reason}`);
        }
      } else {
        if (!/^[1-9][0-9]{0,8}$/.test(version)) throw invalidArgument(`version "${version.slice(0, 40)}" is not a positive integer`);
        target = entry.versions.get(Number(version));
        const available = [...entry.versions.values()].filter((v) => v.state === "ready").map((v) => v.version);
        if (!target) throw notFound(`version ${version} of model "${name}" not found (serving: ${available.join(", ") || "none"})`);
        if (target.state === "loading") throw unavailable(`version ${version} of model "${name}" is still loading; retry shortly`);
        if (target.state !== "ready") throw failedPrecondition(`version ${version} of model "${name}" is ${target.state}: ${target.reason}`);
      }
      return target.loaded!;
    },
    async close() {
      const loaded = [...entries.values()].flatMap((e) => [...e.versions.values()].flatMap((v) => (v.loaded ? [v.loaded] : [])));
      await Promise.all([...loaded.map((v) => v.close()), ...retiring]);
    },
  };
}

