import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Logger } from "pino";
import { invalidArgument } from "./common/errors.js";
import type { ServeConfig } from "./config/index.js";
import type { MetricsHandler } from "./telemetry/setup.js";
import type { ServeOptions } from "./server.js";

/**
 * `startServer`'s options from a resolved config: paths made absolute, the files it names read (TLS, the
 * /metrics token; a missing one throws its ENOENT for a one-line message), the token from AIAAS_METRICS_TOKEN
 * when no file is named.
 */
export async function serveOptionsFrom(
  config: ServeConfig,
  extras: { readonly logger: Logger; readonly metrics?: MetricsHandler; readonly env?: Readonly<Record<string, string | undefined>> },
): Promise<ServeOptions> {
  const tls = config.tlsCert
    ? { cert: await readFile(config.tlsCert), key: await readFile(config.tlsKey!), clientCa: config.tlsClientCa ? await readFile(config.tlsClientCa) : undefined }
    : undefined;
  const metricsToken = config.metricsTokenFile ? (await readFile(config.metricsTokenFile, "utf8")).trim() : extras.env?.AIAAS_METRICS_TOKEN || undefined;
  if (config.metricsTokenFile && !metricsToken) throw invalidArgument(`--metrics-token-file ${config.metricsTokenFile} is empty`);
  return {
    http: config.httpPort >= 0 ? { port: config.httpPort, metrics: extras.metrics, metricsToken, metricsPublic: config.metricsPublic, console: !config.disableConsole } : undefined,
    tls,
    modelsDir: resolve(config.models),
    host: config.host,
    port: config.port,
    providers: config.providers,
    threads: config.threads,
    instances: config.instances,
    maxMessageBytes: config.maxMessageBytes,
    maxQueueSize: config.maxQueueSize,
    maxStreamInflight: config.maxStreamInflight,
    shutdownGraceMs: config.shutdownGraceMs,
    maxConnectionAgeMs: config.maxConnectionAgeMs || undefined,
    maxConnections: config.maxConnections,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    auth: config.keys
      ? {
          keysFile: resolve(config.keys),
          tenantModelsDir: config.tenantModels ? resolve(config.tenantModels) : undefined,
          defaultLimits: {
            requestsPerSecond: config.rateLimit,
            burst: config.burst,
            maxInFlight: config.maxInFlight,
            maxConcurrentJobs: config.maxJobsPerTenant,
            maxTrainDataBytes: config.maxTrainDataBytes,
          },
        }
      : undefined,
    stateDir: config.stateDir ? resolve(config.stateDir) : undefined,
    databaseUrl: config.databaseUrl,
    jobLeaseMs: config.jobLeaseMs,
    training: {
      maxConcurrentJobs: config.maxConcurrentJobs,
      threads: config.trainThreads,
      maxDataBytes: config.maxTrainDataBytes,
      checkpointsDir: config.checkpoints ? resolve(config.checkpoints) : undefined,
    },
    logger: extras.logger,
  };
}
