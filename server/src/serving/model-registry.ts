import type { Logger } from "pino";
import { failedPrecondition, invalidArgument, notFound, unavailable } from "../common/errors.js";
import { loadVersion, type LoadedVersion } from "./loaded-version.js";
import { DEFAULT_SUPERVISION, type SessionSupervision } from "./session-supervisor.js";
import { parseModelConfig, selectVersions, type ModelConfig, type ServingDefaults } from "../repository/index.js";
import { checkModelName, listModelNames, listVersions, modelExists, modelPath, readConfigJson, removeStaleStaging } from "../repository/index.js";

export type ModelStateName = "loading" | "ready" | "unavailable" | "unloading" | "unloaded" | "failed";

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
  /**
   * The version a request runs on; synchronous so no reload can slip between resolving and queueing. With no
   * version named: the newest healthy one, else the newest that is healing (requests wait for its sessions).
   */
  resolve(name: string, version: string): LoadedVersion;
  /** Whether the version (or, with "", the model) can run a request now: a live session, not healing or failed. */
  ready(name: string, version: string): boolean;
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
export function createModelRegistry(
  root: string,
  defaults: ServingDefaults,
  logger: Logger,
  tenant?: string,
  supervision: SessionSupervision = DEFAULT_SUPERVISION,
  shared = false,
): ModelRegistry {
  return new RepositoryRegistry(root, defaults, logger, tenant, supervision, shared);
}

/** A version's state as it is now: a loaded version reports its sessions' health. */
const current = (v: VersionStatus): VersionStatus => {
  if (v.state !== "ready" || !v.loaded) return v;
  const health = v.loaded.health();
  return health.state === "ready" ? v : { ...v, state: health.state, reason: health.reason };
};

const snapshot = (entry: Entry): ModelStatus => {
  const versions = [...entry.versions.values()].map(current).sort((a, b) => b.version - a.version);
  let { state, reason } = entry;
  if (state === "ready" && !versions.some((v) => v.state === "ready")) {
    const healing = versions.find((v) => v.state === "unavailable");
    state = healing ? "unavailable" : "failed";
    reason = (healing ?? versions.find((v) => v.state === "failed"))?.reason ?? reason;
  }
  return { name: entry.name, state, reason, config: entry.config, versions };
};

const exclusive = <T>(entry: Entry, work: () => Promise<T>): Promise<T> => {
  const run = entry.lock.then(work, work);
  entry.lock = run.catch(() => undefined);
  return run;
};

const loadedOf = (versions: Iterable<VersionStatus>): LoadedVersion[] => [...versions].flatMap((v) => (v.loaded ? [v.loaded] : []));

/** A staging folder younger than this in a shared tree may be a publish under way on another replica. */
const STAGING_GRACE_MS = 10 * 60_000;

/** The models of one repository tree, loaded into sessions and batchers. */
class RepositoryRegistry implements ModelRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    readonly root: string,
    private readonly defaults: ServingDefaults,
    private readonly logger: Logger,
    private readonly tenant: string | undefined,
    private readonly supervision: SessionSupervision,
    /** Whether other replicas publish into this tree too (their staging folders are spared at start). */
    private readonly shared: boolean,
  ) {}

  async loadAll(): Promise<void> {
    // At start nothing publishes yet here: a staging folder is what a crash left mid-publish, never a version
    // (or, in a tree replicas share, maybe another replica's publish under way: only old ones are removed).
    for (const path of await removeStaleStaging(this.root, this.shared ? STAGING_GRACE_MS : 0)) this.logger.warn({ path }, `removed ${path}, left by a publish a crash interrupted`);
    const names = await listModelNames(this.root);
    await Promise.all(names.map((name) => this.load(name)));
  }

  async load(name: string): Promise<ModelStatus> {
    checkModelName(name);
    if (!this.entries.has(name) && !(await modelExists(this.root, name))) throw notFound(`model "${name}" is not in the repository`);
    const entry = this.entryOf(name);
    return exclusive(entry, () => this.doLoad(entry));
  }

  async unload(name: string): Promise<ModelStatus> {
    checkModelName(name);
    const entry = this.entries.get(name);
    if (!entry) throw notFound(`model "${name}" is not loaded and not known`);
    return exclusive(entry, () => this.doUnload(entry));
  }

  async has(name: string): Promise<boolean> {
    return this.entries.has(name) || (await modelExists(this.root, name));
  }

  knows(name: string): boolean {
    return this.entries.has(name);
  }

  list(): ModelStatus[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map(snapshot);
  }

  async status(name: string): Promise<ModelStatus> {
    checkModelName(name);
    const entry = this.entries.get(name);
    if (entry) return snapshot(entry);
    if (await modelExists(this.root, name)) {
      return { name, state: "unloaded", reason: "in the repository but not loaded; call LoadModel", config: undefined, versions: [] };
    }
    throw notFound(`model "${name}" not found`);
  }

  resolve(name: string, version: string): LoadedVersion {
    const entry = this.entries.get(name);
    if (!entry) {
      if (name === "") throw invalidArgument("the request names no model");
      checkModelName(name); // a name that could not be a folder is a bad request, not a missing model
      throw notFound(`model "${name}" not found`);
    }
    if (entry.state === "unloaded" || entry.state === "unloading") {
      throw failedPrecondition(`model "${name}" is not loaded; load it with LoadModel`);
    }
    return version === "" ? newestReady(entry) : exactVersion(entry, version);
  }

  ready(name: string, version: string): boolean {
    try {
      return this.resolve(name, version).health().state === "ready";
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const loaded = [...this.entries.values()].flatMap((e) => loadedOf(e.versions.values()));
    await Promise.all([...loaded.map((v) => v.close()), ...this.retiring]);
  }

  private entryOf(name: string): Entry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { name, state: "unloaded", reason: "", config: undefined, versions: new Map(), lock: Promise.resolve() };
      this.entries.set(name, entry);
    }
    return entry;
  }

  /** Drains and releases versions in the background; shutdown waits for them. */
  private retire(versions: Iterable<LoadedVersion>): void {
    for (const v of versions) {
      const done = v.close().catch((error) => this.logger.error({ err: error, model: v.label }, `failed to release ${v.label}`));
      this.retiring.add(done);
      void done.finally(() => this.retiring.delete(done));
    }
  }

  /** The model's config and the versions its policy selects, or why there are none. */
  private async plan(name: string): Promise<{ config: ModelConfig; chosen: number[] }> {
    const config = parseModelConfig(await readConfigJson(this.root, name), this.defaults);
    const onDisk = await listVersions(this.root, name);
    const chosen = selectVersions(config.versionPolicy, onDisk);
    if (chosen.length === 0) {
      throw new Error(onDisk.length ? `version_policy selects none of the versions on disk (${onDisk.join(", ")})` : `no version folder with a ${"model.onnx"} (expected ${name}/1/model.onnx)`);
    }
    return { config, chosen };
  }

  /** (Re)loads a model: new versions come up before the ones they replace retire. */
  private async doLoad(entry: Entry): Promise<ModelStatus> {
    const name = entry.name;
    const previous = entry.versions;
    const wasServing = [...previous.values()].some((v) => v.state === "ready");
    if (!wasServing) entry.state = "loading";
    let plan: { config: ModelConfig; chosen: number[] };
    try {
      plan = await this.plan(name);
    } catch (error) {
      return this.planFailed(entry, (error as Error).message, wasServing);
    }
    const { config, chosen } = plan;
    for (const version of chosen) {
      if (!previous.has(version)) entry.versions.set(version, { version, state: "loading", reason: "", loaded: undefined });
    }
    const results = await Promise.allSettled(chosen.map((v) => loadVersion(name, v, modelPath(this.root, name, v), config, this.logger, this.tenant, this.supervision)));
    const next = new Map<number, VersionStatus>();
    const replaced: LoadedVersion[] = [];
    results.forEach((result, i) => {
      const version = chosen[i];
      const old = previous.get(version);
      if (result.status === "fulfilled") {
        next.set(version, { version, state: "ready", reason: "", loaded: result.value });
        if (old?.loaded) replaced.push(old.loaded);
        return;
      }
      const full = result.reason instanceof Error ? result.reason.message : String(result.reason);
      this.logger.error({ model: `${name}:${version}` }, `${name}:${version} failed to load: ${full}`);
      // Callers see the file named within the repository, never the server's own paths.
      const reason = full.replaceAll(`${this.root}/`, "");
      next.set(version, old?.loaded ? { ...old, reason: `reload failed, still serving the previous file: ${reason}` } : { version, state: "failed", reason, loaded: undefined });
    });
    // Versions the policy no longer selects retire once their requests finish.
    for (const [version, old] of previous) if (!next.has(version) && old.loaded) replaced.push(old.loaded);
    entry.versions = next;
    entry.config = config;
    const ready = [...next.values()].filter((v) => v.state === "ready");
    entry.state = ready.length ? "ready" : "failed";
    entry.reason = ready.length ? "" : [...next.values()].map((v) => `version ${v.version}: ${v.reason}`).join("; ");
    this.retire(replaced);
    if (ready.length) this.logger.info({ model: name, versions: ready.map((v) => v.version) }, `model ${name} is ready (versions ${ready.map((v) => v.version).join(", ")})`);
    return snapshot(entry);
  }

  /** A model whose config or versions cannot be read keeps serving what it served, or fails. */
  private planFailed(entry: Entry, reason: string, wasServing: boolean): ModelStatus {
    this.logger.error({ model: entry.name }, `model ${entry.name} failed to load: ${reason}`);
    if (wasServing) {
      entry.reason = `reload failed, still serving the previous versions: ${reason}`;
    } else {
      entry.state = "failed";
      entry.reason = reason;
      entry.config = undefined;
    }
    return snapshot(entry);
  }

  private async doUnload(entry: Entry): Promise<ModelStatus> {
    const loaded = loadedOf(entry.versions.values());
    entry.state = "unloading";
    entry.versions = new Map([...entry.versions].map(([k, v]) => [k, { ...v, state: "unloading" as const }]));
    await Promise.all(loaded.map((v) => v.close()));
    entry.versions = new Map([...entry.versions].map(([k, v]) => [k, { ...v, state: "unloaded" as const, reason: "unloaded by request", loaded: undefined }]));
    entry.state = "unloaded";
    entry.reason = "unloaded by request";
    this.logger.info({ model: entry.name }, `model ${entry.name} unloaded`);
    return snapshot(entry);
  }
}

/** What a request that names no version runs on: the newest healthy version, else the newest healing one. */
function newestReady(entry: Entry): LoadedVersion {
  let target: VersionStatus | undefined;
  let healing: VersionStatus | undefined;
  for (const v of entry.versions.values()) {
    if (v.state !== "ready") continue;
    const health = v.loaded!.health().state;
    if (health === "ready" && (!target || v.version > target.version)) target = v;
    if (health === "unavailable" && (!healing || v.version > healing.version)) healing = v;
  }
  target ??= healing;
  if (!target) {
    if (entry.state === "loading") throw unavailable(`model "${entry.name}" is still loading; retry shortly`);
    throw failedPrecondition(`model "${entry.name}" has no ready version: ${snapshot(entry).reason}`);
  }
  return target.loaded!;
}

function exactVersion(entry: Entry, version: string): LoadedVersion {
  const name = entry.name;
  if (!/^[1-9][0-9]{0,8}$/.test(version)) throw invalidArgument(`version "${version.slice(0, 40)}" is not a positive integer`);
  const target = entry.versions.get(Number(version));
  const available = [...entry.versions.values()].filter((v) => v.state === "ready").map((v) => v.version);
  if (!target) throw notFound(`version ${version} of model "${name}" not found (serving: ${available.join(", ") || "none"})`);
  if (target.state === "loading") throw unavailable(`version ${version} of model "${name}" is still loading; retry shortly`);
  if (target.state !== "ready") throw failedPrecondition(`version ${version} of model "${name}" is ${target.state}: ${target.reason}`);
  const health = target.loaded!.health();
  if (health.state === "failed") throw failedPrecondition(`version ${version} of model "${name}" failed: ${health.reason}`);
  return target.loaded!;
}
