import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProto } from "grpc-health-check";
import { pino, type Logger } from "pino";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { AdminService, JobState, jobStateToJSON, ModelsService, TrainingService } from "@aiaas/sdk/gen";
import { constants, readFileSync } from "node:fs";
import { access, stat } from "node:fs/promises";
import { probeCuda } from "./cuda-probe.js";
import { startOperationsHttp } from "./http/operations-http.js";
import { operationsRoutes, type OperationsAnswer, type OperationsRequest } from "./http/operations-routes.js";
import type { MetricsHandler } from "./telemetry/setup.js";
import { DEFAULT_SUPERVISION, createModelScopes, type ModelRegistry, type ModelScopes, type SessionSupervision } from "./serving/index.js";
import {
  KeyStore,
  Quotas,
  SqlKeyDirectory,
  type KeyDirectory,
  createAuditLog,
  SqlAuditStore,
  createAuthenticator,
  metricsAccess,
  type AuditLog,
  type Authenticator,
  type Limits,
} from "./auth/index.js";
import { createAdminService } from "./rpc/admin-service.js";
import { openServerState, type ServerState } from "./server-state.js";
import { joinCluster, type Cluster } from "./cluster.js";
import type { Database } from "./state/index.js";
import { parseProviders, type ProviderName } from "./runtime/index.js";
import { createInferenceService } from "./rpc/inference-service.js";
import { createInferenceProtocolService } from "./rpc/inference-protocol-service.js";
import { createModelsService } from "./rpc/models-service.js";
import { createTrainingService } from "./rpc/training-service.js";
import { createJobManager, type JobManager } from "./training/jobs/index.js";
import { inferenceProtocolDefinition, inferenceServiceDefinition } from "./rpc/zero-copy-service.js";
import { PROTO_ROOT, SERVED_PROTOS } from "./rpc/proto-files.js";
import { withProtocMapEntryNames } from "./rpc/reflection-descriptors.js";
import { withSafeDecoding } from "./rpc/request-decoding.js";
import { listen, type Listener } from "./rpc/listener.js";
import { leanRoute, routeCalls, type Route } from "./rpc/call-routes.js";
import { observeServer } from "./telemetry/instruments.js";
import { TrafficMonitor } from "./telemetry/traffic-monitor.js";
import { createConsoleBackend } from "./rpc/console-backend.js";
import type { ConsoleBackend } from "./http/console-api.js";
import { DEFAULT_LIMITS, SERVE_DEFAULTS } from "./config/index.js";
import type { HandlerEnv } from "./rpc/handlers.js";
import { serverMiddleware } from "./rpc/middleware/index.js";
import { ServerError, failedPrecondition, invalidArgument } from "./common/errors.js";

export interface ServeOptions {
  /** The model repository: `<dir>/<model>/<version>/model.onnx` and optional `<dir>/<model>/config.json`. */
  readonly modelsDir: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /**
   * Execution providers in order of preference, e.g. ["cuda", "cpu"], or "auto" (the default): CUDA when
   * ONNX Runtime can use it here, else CPU. CPU always remains as the fallback.
   */
  readonly providers?: readonly ProviderName[] | "auto";
  /** Intra-op threads per session (default 1: two single-threaded sessions beat one with two threads). */
  readonly threads?: number;
  /** Sessions (worker threads) per model version; default min(2, cores). */
  readonly instances?: number;
  readonly maxMessageBytes?: number;
  readonly maxQueueSize?: number;
  readonly maxStreamInflight?: number;
  /** TLS: PEM certificate chain and key; with clientCa, clients must present a certificate it signed (mTLS). */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string; readonly clientCa?: Buffer | string };
  /**
   * The operations HTTP port (health paths, and /metrics when a handler is given); off when absent. With API
   * keys on, /metrics needs `authorization: Bearer` with `metricsToken` or an admin key, unless `metricsPublic`.
   */
  readonly http?: {
    readonly port: number;
    readonly host?: string;
    readonly metrics?: MetricsHandler;
    readonly metricsToken?: string;
    readonly metricsPublic?: boolean;
    /** Serve the operations console at `/` and its API at `/api/` (default true). */
    readonly console?: boolean;
  };
  /**
   * Close each client connection after this long (with a grace for its calls), so clients re-resolve and
   * spread over replicas that came up since: gRPC's grpc.max_connection_age_ms. Off when absent.
   */
  readonly maxConnectionAgeMs?: number;
  /** Open client connections at most; more are closed at once (default: the file descriptor limit less a reserve). */
  readonly maxConnections?: number;
  /** A connection that has not sent its TLS hello or HTTP/2 preface by then is closed (default 10 s; 0: never). */
  readonly handshakeTimeoutMs?: number;
  /** A connection without a call for this long gets GOAWAY (default 5 minutes; 0: never). Keepalive pings do not count. */
  readonly idleTimeoutMs?: number;
  /** How long a graceful shutdown waits for calls in flight before it cancels them. */
  readonly shutdownGraceMs?: number;
  readonly training?: TrainingOptions;
  /**
   * The state folder: training jobs, their events and uploads are stored there (an embedded PostgreSQL in
   * `<dir>/db`) and survive restarts; checkpoints go to `<dir>/checkpoints` unless training.checkpointsDir says
   * otherwise. Absent: jobs live in memory and a shutdown cancels them.
   */
  readonly stateDir?: string;
  /**
   * A PostgreSQL server for jobs and their events (`postgres://…`) instead of the embedded database in the
   * state folder; needs `stateDir` too (uploads and checkpoints live there).
   */
  readonly databaseUrl?: string;
  /** Replicas sharing a database: how long a replica holds a job it runs without renewing (default 10 s). */
  readonly jobLeaseMs?: number;
  /** The state database opened elsewhere (a process of `--processes N`: its primary's embedded one), migrated. */
  readonly stateDatabase?: Database;
  /**
   * How a session whose worker thread died is replaced: backoff from `backoffMs` (doubling up to
   * `maxBackoffMs`), and a version gives up (FAILED) after `crashLimit` deaths within `crashWindowMs`.
   */
  readonly supervision?: Partial<SessionSupervision>;
  /** API keys, tenants and quotas; absent: every call is the operator's (said loudly in the log). */
  readonly auth?: AuthOptions;
  readonly logger?: Logger;
}

export interface AuthOptions {
  /** The key store file (created when missing). */
  readonly keysFile: string;
  /** Root of the tenants' model trees, `<dir>/<tenant>/<model>/<version>/…` (default: `<models>.tenants` beside the repository). */
  readonly tenantModelsDir?: string;
  /** Limits for tenants and keys that set none. */
  readonly defaultLimits?: Limits;
  /** Where audit lines go (default: the server's log, with `"audit": true`). */
  readonly auditLogger?: Logger;
}

export { DEFAULT_LIMITS } from "./config/index.js";

export interface TrainingOptions {
  /** Jobs training at once (default 1); others wait QUEUED. */
  readonly maxConcurrentJobs?: number;
  /** ORT intra-op threads per training job (default 1, so training leaves cores to inference). */
  readonly threads?: number;
  /** Largest upload of one job (default 1 GiB); more is RESOURCE_EXHAUSTED. */
  readonly maxDataBytes?: number;
  /** Where checkpoints go (default: <tmp>/aiaas-checkpoints). */
  readonly checkpointsDir?: string;
}

export interface RunningServer {
  readonly port: number;
  /** The operations HTTP port, when enabled. */
  readonly httpPort: number | undefined;
  /** What the operations port answers (health, metrics), for a primary that serves it for several processes. */
  readonly operations: (request: OperationsRequest) => Promise<OperationsAnswer>;
  readonly address: string;
  /** The public model repository. */
  readonly registry: ModelRegistry;
  readonly scopes: ModelScopes;
  readonly keys: KeyDirectory | undefined;
  readonly jobs: JobManager;
  readonly logger: Logger;
  /** Stops accepting calls, lets calls in flight finish (up to the grace period), releases every session. */
  shutdown(): Promise<void>;
}


const SERVICES = ["aiaas.v1.Inference", "aiaas.v1.Models", "aiaas.v1.Training", "aiaas.v1.Admin", "inference.GRPCInferenceService"] as const;

const SERVER_VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

function serverCredentials(options: ServeOptions, logger: Logger): ServerCredentials {
  if (!options.tls) return ServerCredentials.createInsecure();
  const { cert, key, clientCa } = options.tls;
  logger.info(clientCa ? "TLS with client certificates required (mutual TLS)" : "TLS");
  return ServerCredentials.createSsl(
    clientCa ? Buffer.from(clientCa) : null,
    [{ cert_chain: Buffer.from(cert), private_key: Buffer.from(key) }],
    Boolean(clientCa),
  );
}

/** Resolves the provider list once at start-up, with one log line saying which provider serves and why. */
async function selectProviders(requested: readonly ProviderName[] | "auto", logger: Logger): Promise<ProviderName[]> {
  const auto = requested === "auto";
  const list = requested === "auto" ? (["cuda", "cpu"] as ProviderName[]) : parseProviders(requested);
  if (!list.includes("cuda")) {
    logger.info({ providers: list }, "execution provider: CPU");
    return list;
  }
  const probe = await probeCuda();
  if (probe.available) {
    logger.info({ providers: list }, "execution provider: CUDA (CPU as fallback)");
    return list;
  }
  logger.warn(
    { providers: ["cpu"], reason: probe.reason },
    `CUDA execution provider unavailable, falling back to CPU: ${probe.reason}${auto ? "" : " (requested: " + list.join(",") + ")"}`,
  );
  return ["cpu"];
}

function grpcServer(options: ServeOptions, maxMessageBytes: number): Server {
  const idleMs = options.idleTimeoutMs ?? SERVE_DEFAULTS.idleTimeoutMs;
  return new Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    // channelz bookkeeping costs every call; nothing here reads it.
    "grpc.enable_channelz": 0,
    ...(idleMs > 0 ? { "grpc.max_connection_idle_ms": idleMs } : {}),
    ...(options.maxConnectionAgeMs
      ? { "grpc.max_connection_age_ms": options.maxConnectionAgeMs, "grpc.max_connection_age_grace_ms": 30_000 }
      : {}),
  });
}

/** The model repository must be a readable folder: said in one line before anything starts. */
async function checkRepository(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw invalidArgument(`the model repository ${dir} is not a folder; point --models at a folder of <model>/<version>/model.onnx`);
    await access(dir, constants.R_OK | constants.X_OK);
  } catch (error) {
    if (error instanceof ServerError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw invalidArgument(`the model repository ${dir} does not exist; create it (an empty folder serves no models) or point --models at one`);
    throw failedPrecondition(`the model repository ${dir} cannot be read (${code ?? "error"}); check its permissions`);
  }
}

/** Every gRPC service, health and reflection on the server; returns what shutdown needs. */
function addServices(server: Server, deps: {
  options: ServeOptions;
  state: ServerState | undefined;
  env: HandlerEnv & { auth: Authenticator };
  scopes: ModelScopes;
  keys: KeyDirectory | undefined;
  audit: AuditLog;
  providers: readonly ProviderName[];
  maxMessageBytes: number;
  isServing: () => boolean;
  cluster: Cluster | undefined;
  traffic: () => TrafficMonitor;
}): { jobs: JobManager; health: HealthImplementation; services: Map<string, UntypedServiceImplementation> } {
  const { options, env, scopes } = deps;
  const services = new Map<string, UntypedServiceImplementation>();
  const routes = new Map<string, Route>();
  const add = (definition: ServiceDefinition, implementation: UntypedServiceImplementation): void => {
    const safe = withSafeDecoding(definition);
    server.addService(safe, implementation);
    for (const [key, m] of Object.entries(safe)) {
      const route = leanRoute(m, implementation[key]);
      if (route) routes.set(m.path, route);
    }
    const path = Object.values(definition)[0]!.path;
    services.set(path.slice(1, path.lastIndexOf("/")), implementation);
  };
  const inferenceDeps = {
    ...env,
    scopes,
    limits: { maxTensorBytes: deps.maxMessageBytes },
    maxStreamInflight: options.maxStreamInflight ?? SERVE_DEFAULTS.maxStreamInflight,
  };
  add(inferenceServiceDefinition, createInferenceService(inferenceDeps));
  add(ModelsService, createModelsService(scopes, env, deps.traffic, deps.cluster?.models.announce));
  add(AdminService, createAdminService(deps.keys, deps.audit, env));
  const jobs = createJobManager({
    checkpointsDir: options.training?.checkpointsDir ?? deps.state?.checkpointsDir ?? join(tmpdir(), "aiaas-checkpoints"),
    maxConcurrentJobs: options.training?.maxConcurrentJobs ?? SERVE_DEFAULTS.training.maxConcurrentJobs,
    threads: options.training?.threads ?? SERVE_DEFAULTS.training.threads,
    providers: deps.providers.includes("cuda") ? ["cuda", "cpu"] : ["cpu"],
    maxDataBytes: options.training?.maxDataBytes ?? SERVE_DEFAULTS.training.maxDataBytes,
    logger: env.logger,
    durable: deps.state?.durableJobs(scopes),
    onPublished: deps.cluster && ((tenant, model) => deps.cluster!.models.announce(tenant, model, "load")),
  });
  add(TrainingService, createTrainingService(jobs, scopes, { ...env, quotas: env.auth.quotas, limits: inferenceDeps.limits }));
  add(inferenceProtocolDefinition, createInferenceProtocolService({ ...inferenceDeps, serverName: "aiaas", serverVersion: SERVER_VERSION, isServing: deps.isServing }));
  const health = new HealthImplementation(Object.fromEntries(["", ...SERVICES].map((s) => [s, "SERVING"])));
  health.addToServer(server);
  // Files are named relative to their include dirs so reflection resolves them by the names they import.
  const healthRoot = dirname(dirname(dirname(healthProto)));
  const definitions = loadSync([...SERVED_PROTOS, relative(healthRoot, healthProto)], {
    includeDirs: [PROTO_ROOT, healthRoot],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(withProtocMapEntryNames(definitions)).addToServer(server);
  // Our unary and bidi methods skip grpc-js's per-call machinery (rpc/unary-call.ts, rpc/stream-call.ts);
  // server streams, health and reflection stay with it.
  routeCalls(server, routes, { maxReceiveBytes: deps.maxMessageBytes, maxSendBytes: deps.maxMessageBytes });
  return { jobs, health, services };
}

/**
 * Starts the server: checks the repository, binds the gRPC and HTTP ports (a clash is reported before any
 * model loads), loads the models, then starts taking calls. A failure at any step releases what was taken
 * and throws a ServerError whose message is one line a user can act on.
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const logger = options.logger ?? pino({ name: "aiaas" });
  const maxMessageBytes = options.maxMessageBytes ?? SERVE_DEFAULTS.maxMessageBytes;
  await checkRepository(options.modelsDir);
  const server = grpcServer(options, maxMessageBytes);
  const host = options.host ?? SERVE_DEFAULTS.host;
  const listener = await listen(server, {
    host,
    port: options.port ?? SERVE_DEFAULTS.port,
    credentials: serverCredentials(options, logger),
    maxConnections: options.maxConnections,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? SERVE_DEFAULTS.handshakeTimeoutMs,
    logger,
  });
  let serving = false;
  let scopes: ModelScopes | undefined;
  let keys: KeyDirectory | undefined;
  let http: Awaited<ReturnType<typeof startOperationsHttp>> | undefined;
  let state: ServerState | undefined;
  let cluster: Cluster | undefined;
  let auditStore: SqlAuditStore | undefined;
  let operations: ((request: OperationsRequest) => Promise<OperationsAnswer>) | undefined;
  const opsConsole = consoleParts(options, logger);
  try {
    if (options.databaseUrl && !options.stateDir) throw invalidArgument("--database-url needs a --state-dir for the jobs' uploads and checkpoints");
    state = options.stateDir ? await openServerState(options.stateDir, logger, { databaseUrl: options.databaseUrl, jobLeaseMs: options.jobLeaseMs, database: options.stateDatabase }) : undefined;
    keys = options.auth ? await openKeys(options.auth.keysFile, state, logger) : undefined;
    operations = operationsRoutes({
      registry: () => scopes?.public,
      isServing: () => serving,
      metrics: options.http?.metrics,
      authorizeMetrics: metricsAccess(keys, { token: options.http?.metricsToken, public: options.http?.metricsPublic }),
      ...(opsConsole.enabled ? { console: opsConsole.backend } : {}),
    });
    // A port below 0: the routes answer only through `operations` (a worker of --processes; its primary listens).
    http = options.http && options.http.port >= 0 ? await startOperationsHttp({ host: options.http.host ?? host, port: options.http.port, answer: operations, logger }) : undefined;
    const providers = await selectProviders(options.providers ?? "auto", logger);
    const tenantRoot = options.auth ? (options.auth.tenantModelsDir ?? `${options.modelsDir.replace(/\/+$/, "")}.tenants`) : undefined;
    logAuthentication(logger, options.auth && { keysFile: options.auth.keysFile, tenantRoot: tenantRoot! });
    logger.info({ models: options.modelsDir, providers }, `loading models from ${options.modelsDir}`);
    scopes = await createModelScopes({
      publicRoot: options.modelsDir,
      tenantRoot,
      supervision: { ...DEFAULT_SUPERVISION, ...options.supervision },
      shared: state?.db.shared ?? false,
      defaults: {
        providers,
        threads: options.threads ?? SERVE_DEFAULTS.threads,
        instanceCount: options.instances ?? Math.min(2, availableParallelism()),
        maxQueueSize: options.maxQueueSize ?? SERVE_DEFAULTS.maxQueueSize,
      },
      logger,
    });
    auditStore = state ? new SqlAuditStore(state.db, state.replica, logger) : undefined;
    const audit = createAuditLog(options.auth?.auditLogger ?? logger, auditStore);
    // Replicas sharing a database and repository: shared rates, and each other's model control applied.
    cluster = await joinCluster(state, scopes, logger);
    const auth = createAuthenticator({ keys, quotas: new Quotas({ ...DEFAULT_LIMITS, ...options.auth?.defaultLimits }, keys, cluster?.quotas), audit });
    // Aborted when a graceful shutdown begins, so open streams wind down instead of holding it up.
    const stopRequested = new AbortController();
    const env = { logger, serverStopping: stopRequested.signal, middleware: serverMiddleware(auth, logger), auth };
    const { jobs, health, services } = addServices(server, { options, state, env, scopes, keys, audit, providers, maxMessageBytes, isServing: () => serving, cluster, traffic: opsConsole.traffic });
    opsConsole.attach(services, auth);
    const restored = await jobs.restore();
    if (restored.resumed + restored.failed > 0) logger.info(restored, `training jobs after the restart: ${restored.resumed} resumed, ${restored.failed} could not continue`);
    listener.accept();
    serving = true;
    const unobserve = observeGauges(listener, scopes, jobs);
    const address = `${host.includes(":") ? `[${host}]` : host}:${listener.port}`;
    logger.info({ address }, `aiaas listening on ${address}`);
    const parts = { server, listener, jobs, scopes, keys, http, health, stopRequested, logger, state, cluster, auditStore, traffic: opsConsole.monitor };
    return {
      port: listener.port,
      httpPort: http?.port,
      operations: operations!,
      address,
      registry: scopes.public,
      scopes,
      keys,
      jobs,
      logger,
      shutdown: once(() => {
        serving = false;
        unobserve();
        return shutdown(parts, options.shutdownGraceMs ?? SERVE_DEFAULTS.shutdownGraceMs);
      }),
    };
  } catch (error) {
    await cluster?.close();
    await auditStore?.close();
    opsConsole.monitor()?.close();
    await Promise.allSettled([listener.close(), http?.close(), scopes?.close(), state?.close()]);
    keys?.close();
    throw error;
  }
}

/** The gauges a scrape reads: connections, versions that serve, jobs by state. */
function observeGauges(listener: Listener, scopes: ModelScopes, jobs: JobManager): () => void {
  return observeServer({
    connections: () => listener.connections(),
    versionsReady: () => scopes.all().reduce((n, r) => n + r.list().reduce((m, model) => m + model.versions.filter((v) => v.state === "ready").length, 0), 0),
    jobs: () => jobsByState(jobs),
  });
}

/** The metric's state label: the enum's own name, lower case ("JOB_STATE_RUNNING" → "running"). */
const JOB_STATE_NAMES = new Map(
  Object.values(JobState)
    .filter((state): state is JobState => typeof state === "number" && state > 0)
    .map((state) => [state, jobStateToJSON(state).slice("JOB_STATE_".length).toLowerCase()]),
);

/** Every state with its count of jobs (0 included, so a dashboard's series do not vanish). */
async function jobsByState(jobs: JobManager): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries([...JOB_STATE_NAMES.values()].map((name) => [name, 0]));
  for (const job of await jobs.list({ tenant: undefined, allTenants: true })) {
    const name = JOB_STATE_NAMES.get(job.state);
    if (name) counts[name]!++;
  }
  return counts;
}

function logAuthentication(logger: Logger, auth: { keysFile: string; tenantRoot: string } | undefined): void {
  if (auth) logger.info({ keys: auth.keysFile, tenantModels: auth.tenantRoot }, `API keys required (store ${auth.keysFile}); tenant models under ${auth.tenantRoot}`);
  else logger.warn("AUTHENTICATION IS OFF: every caller can predict, train and load models. Start with --keys FILE to require API keys.");
}

/**
 * The console's parts that come late: its backend once the services exist, and the traffic samples (taken
 * from the start when the console is served, so its history is there at once; else from the first WatchTraffic).
 */
function consoleParts(options: ServeOptions, logger: Logger) {
  let backend: ConsoleBackend | undefined;
  let monitor: TrafficMonitor | undefined;
  let enabled = options.http !== undefined && options.http.console !== false;
  // The console's API is plain HTTP on the operations port: it cannot require the client certificates the
  // gRPC port does, so with mutual TLS it would be a way around them.
  if (enabled && options.tls?.clientCa) {
    enabled = false;
    logger.warn("operations console off: the gRPC port requires client certificates (--tls-client-ca), which the console's plain-HTTP API cannot check");
  } else if (enabled && options.tls && options.http!.port >= 0) {
    logger.warn("the operations console is plain HTTP while gRPC uses TLS: API keys typed into it cross the network unencrypted; keep the operations port on a trusted network, or --disable-console");
  }
  const traffic = (): TrafficMonitor => (monitor ??= new TrafficMonitor());
  return {
    enabled,
    backend: () => backend,
    monitor: () => monitor,
    traffic,
    attach(services: ReadonlyMap<string, UntypedServiceImplementation>, auth: Authenticator): void {
      if (!enabled) return;
      traffic();
      backend = createConsoleBackend(services, auth);
    },
  };
}

/**
 * The API keys: the `--keys` file, or, when replicas share a PostgreSQL database, the database (so a key made or
 * revoked through one replica holds on all), to which the file's keys are added at start and whenever the file
 * changes (the first admin key; `aiaas keys` on the file; a revocation there stands too).
 */
async function openKeys(file: string, state: ServerState | undefined, logger: Logger): Promise<KeyDirectory> {
  if (!state?.db.shared) return KeyStore.open(file, { watch: true });
  const directory = await SqlKeyDirectory.open(state.db);
  const seed = async (store: KeyStore): Promise<void> => {
    const { keys, tenants } = store.snapshot();
    await directory.write(keys);
    for (const [tenant, { limits }] of Object.entries(tenants)) if (limits && !directory.tenantLimits(tenant)) await directory.setTenantLimits(tenant, limits);
  };
  const fileKeys = await KeyStore.open(file, { watch: true });
  await seed(fileKeys);
  fileKeys.onChange(() => void seed(fileKeys).catch((error: unknown) => logger.error({ err: error }, `could not add the keys of ${file} to the database`)));
  directory.onClose(() => fileKeys.close());
  logger.info(`API keys in the shared database (${directory.list().length} keys), with those of ${file}`);
  return directory;
}

const once = (fn: () => Promise<void>): (() => Promise<void>) => {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
};

/** Stops taking calls, lets calls in flight finish (up to the grace period), then releases everything. */
async function shutdown(
  parts: {
    server: Server;
    listener: Listener;
    jobs: JobManager;
    scopes: ModelScopes;
    keys: KeyDirectory | undefined;
    http: { close(): Promise<void> } | undefined;
    health: HealthImplementation;
    stopRequested: AbortController;
    logger: Logger;
    state: ServerState | undefined;
    cluster: Cluster | undefined;
    auditStore: SqlAuditStore | undefined;
    traffic: () => TrafficMonitor | undefined;
  },
  grace: number,
): Promise<void> {
  const { server, logger } = parts;
  const deadline = performance.now() + grace;
  parts.stopRequested.abort();
  const closing = parts.listener.close();
  for (const s of ["", ...SERVICES]) parts.health.setStatus(s, "NOT_SERVING");
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      logger.warn(`calls still running after ${grace} ms; cancelling them`);
      server.forceShutdown();
      resolve();
    }, grace);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  // Connections close on their own once their replies are flushed. One a client keeps open (the half of a
  // stream it never ends) is destroyed when the grace is up, at least a second after the calls ended.
  const rest = Math.max(1_000, deadline - performance.now());
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closing, new Promise<void>((resolve) => (timer = setTimeout(resolve, rest)))]);
  clearTimeout(timer);
  parts.listener.destroyConnections();
  await closing;
  parts.traffic()?.close();
  await parts.jobs.close();
  await parts.cluster?.close();
  await parts.auditStore?.close();
  parts.keys?.close();
  await parts.state?.close();
  await parts.scopes.close();
  await parts.http?.close();
  logger.info("aiaas stopped");
}
