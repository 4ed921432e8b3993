import { invalidArgument } from "../common/errors.js";
import type { ProviderName } from "../runtime/index.js";
import { DEFAULT_LIMITS, SERVE_DEFAULTS } from "./defaults.js";
import { flag, integer, oneOf, optionalInteger, optionalText, processCount, providers, text, type Parser } from "./setting-parsers.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Everything `aiaas serve` can be told, resolved: every key has its value or its default. */
export interface ServeConfig {
  readonly models: string;
  readonly host: string;
  readonly port: number;
  readonly providers: "auto" | ProviderName[];
  readonly threads: number;
  readonly instances: number | undefined;
  readonly processes: number | "auto";
  readonly maxMessageBytes: number;
  readonly maxQueueSize: number;
  readonly maxStreamInflight: number;
  readonly shutdownGraceMs: number;
  readonly httpPort: number;
  readonly metricsTokenFile: string | undefined;
  readonly metricsPublic: boolean;
  readonly disableConsole: boolean;
  readonly maxConnectionAgeMs: number;
  readonly maxConnections: number | undefined;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly tlsClientCa: string | undefined;
  readonly maxConcurrentJobs: number;
  readonly trainThreads: number;
  readonly maxTrainDataBytes: number;
  readonly checkpoints: string | undefined;
  readonly stateDir: string | undefined;
  readonly databaseUrl: string | undefined;
  readonly jobLeaseMs: number;
  readonly keys: string | undefined;
  readonly tenantModels: string | undefined;
  readonly rateLimit: number;
  readonly burst: number;
  readonly maxInFlight: number;
  readonly maxJobsPerTenant: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/** One setting: how its value is written on the command line, what it means, how it parses, its default. */
export interface Setting<T> {
  /** The value's placeholder in `--flag <value>`; absent for a flag that takes none (a boolean). */
  readonly value?: string;
  readonly help: string;
  readonly parse: Parser<T>;
  readonly default: T;
}

const port = integer(0, 65535);

/** Every setting of `aiaas serve`, once: the CLI's flags, the AIAAS_* variables and the config file's keys come from here. */
export const SERVE_SETTINGS: { readonly [K in keyof ServeConfig]: Setting<ServeConfig[K]> } = {
  models: { value: "dir", help: "model repository: <dir>/<model>/<version>/model.onnx", parse: text, default: "models" },
  host: { value: "host", help: "address to listen on", parse: text, default: SERVE_DEFAULTS.cliHost },
  port: { value: "port", help: "port to listen on (0 picks a free one)", parse: port, default: SERVE_DEFAULTS.port },
  providers: { value: "list", help: "execution providers in order of preference (cuda,cpu), or auto: CUDA when available, else CPU", parse: providers, default: "auto" },
  threads: { value: "n", help: "intra-op threads per session", parse: integer(1), default: SERVE_DEFAULTS.threads },
  instances: { value: "n", help: "sessions (worker threads) per model version (default: min(2, cores))", parse: optionalInteger(1), default: undefined },
  processes: {
    value: "n|auto",
    help: "serving processes on the one port, supervised by a primary that restarts a dead one and serves the operations port for all (auto: one per core); they share jobs, keys, quotas and model control through --database-url or the state folder's embedded database, which the primary serves to them",
    parse: processCount,
    default: 1,
  },
  maxMessageBytes: { value: "n", help: "largest request or response message", parse: integer(1024), default: SERVE_DEFAULTS.maxMessageBytes },
  maxQueueSize: { value: "n", help: "default per-model queue bound", parse: integer(1), default: SERVE_DEFAULTS.maxQueueSize },
  maxStreamInflight: { value: "n", help: "requests one stream may have running before the server stops reading it", parse: integer(1), default: SERVE_DEFAULTS.maxStreamInflight },
  shutdownGraceMs: { value: "n", help: "how long SIGTERM waits for calls in flight", parse: integer(0), default: SERVE_DEFAULTS.shutdownGraceMs },
  httpPort: { value: "port", help: "operations HTTP port: the console at /, /v2/health/live, /v2/health/ready, /v2/models/NAME/ready, /metrics (-1: off)", parse: integer(-1, 65535), default: SERVE_DEFAULTS.httpPort },
  metricsTokenFile: { value: "file", help: "a file holding the bearer token /metrics requires (also AIAAS_METRICS_TOKEN); with --keys, admin keys work too", parse: optionalText, default: undefined },
  metricsPublic: { help: "with --keys, serve /metrics without a token (its series name every tenant and model)", parse: flag, default: false },
  disableConsole: { help: "do not serve the operations console (/ and /api/) on the HTTP port", parse: flag, default: false },
  maxConnectionAgeMs: { value: "n", help: "close client connections after this long so clients rebalance over new replicas (0: never)", parse: integer(0), default: 0 },
  maxConnections: { value: "n", help: "open client connections at most; more are closed at once (default: the file descriptor limit less 256)", parse: optionalInteger(1), default: undefined },
  handshakeTimeoutMs: { value: "n", help: "close a connection that has not sent its TLS hello or HTTP/2 preface by then (0: never)", parse: integer(0), default: SERVE_DEFAULTS.handshakeTimeoutMs },
  idleTimeoutMs: { value: "n", help: "send GOAWAY to a connection without a call for this long (0: never)", parse: integer(0), default: SERVE_DEFAULTS.idleTimeoutMs },
  tlsCert: { value: "file", help: "PEM certificate chain: serve over TLS (with --tls-key)", parse: optionalText, default: undefined },
  tlsKey: { value: "file", help: "PEM private key of --tls-cert", parse: optionalText, default: undefined },
  tlsClientCa: { value: "file", help: "PEM CA: require client certificates it signed (mutual TLS)", parse: optionalText, default: undefined },
  maxConcurrentJobs: { value: "n", help: "training jobs that train at once; others wait QUEUED", parse: integer(1), default: SERVE_DEFAULTS.training.maxConcurrentJobs },
  trainThreads: { value: "n", help: "intra-op threads per training job", parse: integer(1), default: SERVE_DEFAULTS.training.threads },
  maxTrainDataBytes: { value: "n", help: "largest upload of one training job", parse: integer(1), default: SERVE_DEFAULTS.training.maxDataBytes },
  checkpoints: { value: "dir", help: "where training checkpoints are written (default: <state-dir>/checkpoints)", parse: optionalText, default: undefined },
  stateDir: {
    value: "dir",
    help: "the state folder: training jobs, their events and uploads survive restarts there (an embedded PostgreSQL); none: jobs in memory",
    parse: (raw, where) => {
      const dir = text(raw, where);
      return dir === "none" ? undefined : dir;
    },
    default: "aiaas-state",
  },
  databaseUrl: {
    value: "url",
    help: "postgres://user:password@host:5432/db: keep jobs and their events in this PostgreSQL server instead of the embedded one, shared by every replica given the same URL (their --state-dir must then be one shared volume: uploads and checkpoints)",
    parse: optionalText,
    default: undefined,
  },
  jobLeaseMs: {
    value: "ms",
    help: "replicas sharing a database: a replica's hold on the jobs it runs lasts this long unless renewed; the jobs of a replica that died move to another after about this long",
    parse: integer(200),
    default: 10_000,
  },
  keys: { value: "file", help: "API key store: every call needs 'authorization: Bearer <key>' (without it authentication is off)", parse: optionalText, default: undefined },
  tenantModels: { value: "dir", help: "root of the tenants' models, <dir>/<tenant>/<model>/<version>/ (default: <models>.tenants)", parse: optionalText, default: undefined },
  rateLimit: { value: "n", help: "default requests per second per tenant", parse: integer(1), default: DEFAULT_LIMITS.requestsPerSecond },
  burst: { value: "n", help: "default burst of requests per tenant", parse: integer(1), default: DEFAULT_LIMITS.burst },
  maxInFlight: { value: "n", help: "default calls in flight per tenant", parse: integer(1), default: DEFAULT_LIMITS.maxInFlight },
  maxJobsPerTenant: { value: "n", help: "default training jobs queued or running per tenant", parse: integer(1), default: DEFAULT_LIMITS.maxConcurrentJobs },
  logLevel: { value: "level", help: LOG_LEVELS.join(", "), parse: oneOf(LOG_LEVELS), default: "info" },
};

type Key = keyof ServeConfig;
const KEYS = Object.keys(SERVE_SETTINGS) as Key[];

/** `maxQueueSize` → `--max-queue-size`. */
export const flagOf = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
/** `maxQueueSize` → `AIAAS_MAX_QUEUE_SIZE`. */
export const envOf = (key: string): string => `AIAAS_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
const camel = (key: string): string => key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());

/** Where values come from; each wins over the ones after it: flags, then the environment, then the file. */
export interface ConfigSources {
  /** Values of the flags given, by setting key (absent: not given). */
  readonly flags?: Partial<Record<Key, unknown>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A config file's contents (keys as camelCase or kebab-case), and its name for messages. */
  readonly file?: { readonly name: string; readonly values: Readonly<Record<string, unknown>> };
}

/** The one place settings are resolved: each from its flag, AIAAS_* variable, config file key or default, then checked together. */
export function loadServeConfig(sources: ConfigSources): ServeConfig {
  const fileValues = new Map<string, unknown>();
  for (const [key, value] of Object.entries(sources.file?.values ?? {})) {
    const name = camel(key);
    if (!(name in SERVE_SETTINGS)) {
      throw invalidArgument(`${sources.file!.name}: unknown setting "${key}" (known: ${KEYS.join(", ")})`);
    }
    fileValues.set(name, value);
  }
  const config = {} as Record<Key, unknown>;
  for (const key of KEYS) {
    const setting = SERVE_SETTINGS[key] as Setting<unknown>;
    const env = sources.env?.[envOf(key)];
    if (sources.flags?.[key] !== undefined) config[key] = setting.parse(sources.flags[key], flagOf(key));
    else if (env !== undefined && env !== "") config[key] = setting.parse(env, envOf(key));
    else if (fileValues.has(key)) config[key] = setting.parse(fileValues.get(key), `${sources.file!.name}: ${key}`);
    else config[key] = setting.default;
  }
  return checkTogether(config as unknown as ServeConfig);
}

function checkTogether(config: ServeConfig): ServeConfig {
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) throw invalidArgument("--tls-cert and --tls-key go together");
  if (config.tlsClientCa && !config.tlsCert) throw invalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
  return config;
}
