import { parseProviders, type ProviderName } from "../runtime/index.js";

export type VersionPolicy =
  | { readonly kind: "latest"; readonly count: number }
  | { readonly kind: "all" }
  | { readonly kind: "specific"; readonly versions: readonly number[] };

export type GraphOptimizationLevel = "disabled" | "basic" | "extended" | "all";

/** A model's serving configuration: `<repo>/<model>/config.json` over the server's defaults. */
export interface ModelConfig {
  /** undefined: batch when every input and output has a variable first dimension (64 rows), else not. */
  readonly maxBatchSize: number | undefined;
  readonly maxQueueDelayUs: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueSize: number;
  /** 0: no server-side timeout beyond the caller's deadline. */
  readonly defaultTimeoutMs: number;
  readonly instanceCount: number;
  readonly providers: readonly ProviderName[];
  readonly cudaDeviceId: number;
  readonly threads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly versionPolicy: VersionPolicy;
  readonly warmup: boolean;
  /** A run longer than this means a stuck session: its worker is replaced (0: never). Default 60 s. */
  readonly maxRunMs: number;
  /**
   * The longest run, in µs, that may block the main thread: a version whose one-row run takes less (timed when
   * it loads, CPU only, model file ≤ 16 MiB) runs the requests of an idle process on the main thread, sparing
   * the worker round trip. 0: always on workers.
   */
  readonly inlineRunBudgetUs: number;
  /** Narrowed shapes by input name (full dims, -1 for variable). */
  readonly inputShapes: Readonly<Record<string, readonly number[]>>;
}

/** Server-wide defaults, set by `aiaas serve` options. */
export interface ServingDefaults {
  readonly providers: readonly ProviderName[];
  readonly threads: number;
  readonly instanceCount: number;
  readonly maxQueueSize: number;
}

export const DEFAULT_AUTO_BATCH_SIZE = 64;

/** A run is stuck after this long unless the model's config says otherwise: generous, as a huge batch on CPU may take seconds. */
export const DEFAULT_MAX_RUN_MS = 60_000;

/**
 * About what a worker round trip costs an idle server on a small VM (two thread wake-ups: 0.3–0.5 ms),
 * doubled: a run this short blocks the main thread no longer than a young-generation GC does.
 */
export const DEFAULT_INLINE_RUN_BUDGET_US = 1_000;

const KEYS = [
  "max_batch_size", "max_queue_delay_us", "preferred_batch_sizes", "max_queue_size", "default_timeout_ms",
  "instance_count", "providers", "cuda_device_id", "threads", "graph_optimization_level", "version_policy", "warmup",
  "max_run_ms", "inline_run_budget_us", "inputs",
] as const;

/** Parses config.json (already JSON-decoded). Throws an Error whose message names the bad key. */
export function parseModelConfig(raw: unknown, defaults: ServingDefaults): ModelConfig {
  if (raw === undefined) raw = {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("config.json must hold a JSON object");
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(KEYS as readonly string[]).includes(key)) throw new Error(`config.json: unknown key "${key}" (known: ${KEYS.join(", ")})`);
  }
  const int = (key: string, fallback: number, min: number, max = 2 ** 31 - 1): number => {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new Error(`config.json: "${key}" must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const maxBatchSize = obj.max_batch_size === undefined ? undefined : int("max_batch_size", 0, 0, 65536);
  const preferred = obj.preferred_batch_sizes ?? [];
  if (!Array.isArray(preferred) || !preferred.every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`config.json: "preferred_batch_sizes" must be a list of positive integers`);
  }
  let providers = defaults.providers;
  if (obj.providers !== undefined) {
    if (!Array.isArray(obj.providers) && typeof obj.providers !== "string") throw new Error(`config.json: "providers" must be a list like ["cuda", "cpu"]`);
    try {
      providers = parseProviders(obj.providers as string | string[]);
    } catch (error) {
      throw new Error(`config.json: ${(error as Error).message}`);
    }
  }
  const level = obj.graph_optimization_level ?? "all";
  if (!["disabled", "basic", "extended", "all"].includes(level as string)) {
    throw new Error(`config.json: "graph_optimization_level" must be one of disabled, basic, extended, all`);
  }
  if (obj.warmup !== undefined && typeof obj.warmup !== "boolean") throw new Error(`config.json: "warmup" must be true or false`);
  return {
    maxBatchSize,
    maxQueueDelayUs: int("max_queue_delay_us", 0, 0, 10_000_000),
    preferredBatchSizes: preferred as number[],
    maxQueueSize: int("max_queue_size", defaults.maxQueueSize, 1),
    defaultTimeoutMs: int("default_timeout_ms", 0, 0),
    instanceCount: int("instance_count", defaults.instanceCount, 1, 64),
    providers,
    cudaDeviceId: int("cuda_device_id", 0, 0, 64),
    threads: int("threads", defaults.threads, 1, 256),
    graphOptimizationLevel: level as GraphOptimizationLevel,
    versionPolicy: parseVersionPolicy(obj.version_policy),
    warmup: (obj.warmup as boolean | undefined) ?? true,
    maxRunMs: int("max_run_ms", DEFAULT_MAX_RUN_MS, 0, 3_600_000),
    inlineRunBudgetUs: int("inline_run_budget_us", DEFAULT_INLINE_RUN_BUDGET_US, 0, 100_000),
    inputShapes: parseInputShapes(obj.inputs),
  };
}

function parseVersionPolicy(raw: unknown): VersionPolicy {
  if (raw === undefined) return { kind: "latest", count: 1 };
  const bad = (): Error =>
    new Error(`config.json: "version_policy" must be {"latest": N}, {"all": true} or {"specific": [1, 2]}`);
  if (typeof raw !== "object" || raw === null) throw bad();
  const obj = raw as Record<string, unknown>;
  if ("latest" in obj && Number.isInteger(obj.latest) && (obj.latest as number) > 0) return { kind: "latest", count: obj.latest as number };
  if ("all" in obj && obj.all === true) return { kind: "all" };
  if ("specific" in obj && Array.isArray(obj.specific) && obj.specific.length > 0 && obj.specific.every((v) => Number.isInteger(v) && v > 0)) {
    return { kind: "specific", versions: obj.specific as number[] };
  }
  throw bad();
}

function parseInputShapes(raw: unknown): Record<string, number[]> {
  if (raw === undefined) return {};
  const bad = (): Error => new Error(`config.json: "inputs" must map input names to {"shape": [-1, 28, 28]}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad();
  const out: Record<string, number[]> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const shape = (value as { shape?: unknown } | null)?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= -1 && d !== 0)) throw bad();
    out[name] = shape as number[];
  }
  return out;
}

/** Which of the versions on disk a policy serves. */
export function selectVersions(policy: VersionPolicy, onDisk: readonly number[]): number[] {
  const sorted = [...onDisk].sort((a, b) => b - a);
  switch (policy.kind) {
    case "latest":
      return sorted.slice(0, policy.count);
    case "all":
      return sorted;
    case "specific":
      return sorted.filter((v) => policy.versions.includes(v));
  }
}
