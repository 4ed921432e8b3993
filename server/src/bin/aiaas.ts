#!/usr/bin/env node
import { Command, InvalidArgumentError, type OptionValues } from "commander";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pino } from "pino";
import { parseProviders } from "../runtime/index.js";
import { addClientCommands } from "../cli/client-commands.js";
import { examples } from "../cli/table.js";
import { installTelemetry } from "../telemetry/setup.js";
import { startServer } from "../server.js";
import { DEFAULT_LIMITS, SERVE_DEFAULTS } from "../serve-defaults.js";
import { Code, ServerError } from "../common/errors.js";

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(max < Number.MAX_SAFE_INTEGER ? `expected an integer from ${min} to ${max}` : `expected an integer >= ${min}`);
  return n;
};

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

const program = new Command("aiaas")
  .description("AI models as a service: serve and train ONNX models over gRPC")
  .version(VERSION, "-V, --version", "print the version")
  .showHelpAfterError("(run with --help for usage)");
// Usage errors (unknown option or command, missing or bad argument) exit 2, as the README says; help and
// --version exit 0. Set before the commands are added, so every subcommand inherits it.
program.exitOverride((error) => {
  if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") process.exit(0);
  process.exit(error.exitCode === 0 ? 0 : 2);
});

program
  .command("serve")
  .description("serve a model repository over gRPC")
  .option("--models <dir>", "model repository: <dir>/<model>/<version>/model.onnx", "models")
  .option("--host <host>", "address to listen on", SERVE_DEFAULTS.cliHost)
  .option("--port <port>", "port to listen on (0 picks a free one)", integer(0, 65535), SERVE_DEFAULTS.port)
  .option("--providers <list>", "execution providers in order of preference (cuda,cpu), or auto: CUDA when available, else CPU", "auto")
  .option("--threads <n>", "intra-op threads per session", integer(1), SERVE_DEFAULTS.threads)
  .option("--instances <n>", "sessions (worker threads) per model version (default: min(2, cores))", integer(1))
  .option("--max-message-bytes <n>", "largest request or response message", integer(1024), SERVE_DEFAULTS.maxMessageBytes)
  .option("--max-queue-size <n>", "default per-model queue bound", integer(1), SERVE_DEFAULTS.maxQueueSize)
  .option("--shutdown-grace-ms <n>", "how long SIGTERM waits for calls in flight", integer(0), SERVE_DEFAULTS.shutdownGraceMs)
  .option("--http-port <port>", "operations HTTP port: /v2/health/live, /v2/health/ready, /v2/models/NAME/ready, /metrics (-1: off)", (v) => Number(v), SERVE_DEFAULTS.httpPort)
  .option("--metrics-token-file <file>", "a file holding the bearer token /metrics requires (also AIAAS_METRICS_TOKEN); with --keys, admin keys work too")
  .option("--metrics-public", "with --keys, serve /metrics without a token (its series name every tenant and model)")
  .option("--max-connection-age-ms <n>", "close client connections after this long so clients rebalance over new replicas (0: never)", integer(0), 0)
  .option("--max-connections <n>", "open client connections at most; more are closed at once (default: the file descriptor limit less 256)", integer(1))
  .option("--handshake-timeout-ms <n>", "close a connection that has not sent its TLS hello or HTTP/2 preface by then (0: never)", integer(0), SERVE_DEFAULTS.handshakeTimeoutMs)
  .option("--idle-timeout-ms <n>", "send GOAWAY to a connection without a call for this long (0: never)", integer(0), SERVE_DEFAULTS.idleTimeoutMs)
  .option("--tls-cert <file>", "PEM certificate chain: serve over TLS (with --tls-key)")
  .option("--tls-key <file>", "PEM private key of --tls-cert")
  .option("--tls-client-ca <file>", "PEM CA: require client certificates it signed (mutual TLS)")
  .option("--max-concurrent-jobs <n>", "training jobs that train at once; others wait QUEUED", integer(1), SERVE_DEFAULTS.training.maxConcurrentJobs)
  .option("--train-threads <n>", "intra-op threads per training job", integer(1), SERVE_DEFAULTS.training.threads)
  .option("--max-train-data-bytes <n>", "largest upload of one training job", integer(1), SERVE_DEFAULTS.training.maxDataBytes)
  .option("--checkpoints <dir>", "where training checkpoints are written (default: <tmp>/aiaas-checkpoints)")
  .option("--keys <file>", "API key store: every call needs 'authorization: Bearer <key>' (without it authentication is off)")
  .option("--tenant-models <dir>", "root of the tenants' models, <dir>/<tenant>/<model>/<version>/ (default: <models>.tenants)")
  .option("--rate-limit <n>", "default requests per second per tenant", integer(1), DEFAULT_LIMITS.requestsPerSecond)
  .option("--burst <n>", "default burst of requests per tenant", integer(1), DEFAULT_LIMITS.burst)
  .option("--max-in-flight <n>", "default calls in flight per tenant", integer(1), DEFAULT_LIMITS.maxInFlight)
  .option("--max-jobs-per-tenant <n>", "default training jobs queued or running per tenant", integer(1), DEFAULT_LIMITS.maxConcurrentJobs)
  .option("--log-level <level>", "fatal, error, warn, info, debug", "info")
  .addHelpText(
    "after",
    examples(
      "aiaas serve --models ./models",
      "aiaas serve --models ./models --port 50052 --http-port 8001",
      "aiaas serve --models ./models --keys keys.json --tls-cert server.pem --tls-key server.key",
    ),
  )
  .action(async (opts) => {
    try {
      await serve(opts);
    } catch (error) {
      // One line, no stack: what failed, where, and what to do. Bad arguments and files exit 2, runtime failures 1.
      const known = error instanceof ServerError ? error : undefined;
      const file = known ? undefined : fileError(error);
      if (known || file) {
        console.error(`error: ${known?.message ?? file}`);
        process.exit(known?.code === Code.INVALID_ARGUMENT || file ? 2 : 1);
      }
      console.error(`error: ${(error as Error).message ?? String(error)} (an unexpected error; run with --log-level debug for its stack and report it)`);
      pino({ name: "aiaas", level: opts.logLevel }).debug({ err: error }, "startup failed");
      process.exit(1);
    }
  });

/** A missing or unreadable file named on the command line, as one line; undefined for other errors. */
function fileError(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException;
  if (!e?.path || !["ENOENT", "EACCES", "EISDIR", "ENOTDIR"].includes(e.code ?? "")) return undefined;
  const why = { ENOENT: "does not exist", EACCES: "cannot be read (permission denied)", EISDIR: "is a folder, not a file", ENOTDIR: "is not in a folder" }[e.code as "ENOENT"];
  return `${e.path} ${why}`;
}

async function serve(opts: OptionValues): Promise<void> {
  const logger = pino({ name: "aiaas", level: opts.logLevel });
  let providers: string | ReturnType<typeof parseProviders> = "auto";
  try {
    if (opts.providers !== "auto") providers = parseProviders(opts.providers);
  } catch (error) {
    program.error((error as Error).message, { exitCode: 2 });
  }
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) program.error("--tls-cert and --tls-key go together", { exitCode: 2 });
  if (opts.tlsClientCa && !opts.tlsCert) program.error("--tls-client-ca needs --tls-cert and --tls-key", { exitCode: 2 });
  const tls = opts.tlsCert
    ? {
        cert: await readFile(opts.tlsCert),
        key: await readFile(opts.tlsKey),
        clientCa: opts.tlsClientCa ? await readFile(opts.tlsClientCa) : undefined,
      }
    : undefined;
  if (!Number.isInteger(opts.httpPort) || opts.httpPort < -1 || opts.httpPort > 65535) program.error("--http-port takes a port number, 0 for any free one, or -1 for none", { exitCode: 2 });
  const metricsToken = opts.metricsTokenFile ? (await readFile(opts.metricsTokenFile, "utf8")).trim() : process.env.AIAAS_METRICS_TOKEN || undefined;
  if (opts.metricsTokenFile && !metricsToken) program.error(`--metrics-token-file ${opts.metricsTokenFile} is empty`, { exitCode: 2 });
  const telemetry = installTelemetry({ prometheus: opts.httpPort >= 0 });
  if (telemetry.otlp.traces || telemetry.otlp.metrics) {
    logger.info({ otlp: telemetry.otlp }, "exporting OpenTelemetry over OTLP/HTTP (OTEL_* environment)");
  }
  const server = await startServer({
    http: opts.httpPort >= 0 ? { port: opts.httpPort, metrics: telemetry.metricsHandler, metricsToken, metricsPublic: Boolean(opts.metricsPublic) } : undefined,
    tls,
    modelsDir: resolve(opts.models),
    host: opts.host,
    port: opts.port,
    providers,
    threads: opts.threads,
    instances: opts.instances,
    maxMessageBytes: opts.maxMessageBytes,
    maxQueueSize: opts.maxQueueSize,
    shutdownGraceMs: opts.shutdownGraceMs,
    maxConnectionAgeMs: opts.maxConnectionAgeMs || undefined,
    maxConnections: opts.maxConnections,
    handshakeTimeoutMs: opts.handshakeTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    auth: opts.keys
      ? {
          keysFile: resolve(opts.keys),
          tenantModelsDir: opts.tenantModels ? resolve(opts.tenantModels) : undefined,
          defaultLimits: {
            requestsPerSecond: opts.rateLimit,
            burst: opts.burst,
            maxInFlight: opts.maxInFlight,
            maxConcurrentJobs: opts.maxJobsPerTenant,
            maxTrainDataBytes: opts.maxTrainDataBytes,
          },
        }
      : undefined,
    training: {
      maxConcurrentJobs: opts.maxConcurrentJobs,
      threads: opts.trainThreads,
      maxDataBytes: opts.maxTrainDataBytes,
      checkpointsDir: opts.checkpoints ? resolve(opts.checkpoints) : undefined,
    },
    logger,
  });
  let signals = 0;
  const stop = (signal: string): void => {
    if (++signals > 1) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    logger.info(`${signal}: finishing calls in flight, then exiting`);
    server.shutdown().then(
      // Flush telemetry last, so the shutdown's own spans and final counts are exported too.
      () => telemetry.shutdown().then(() => process.exit(0)),
      (error) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

addClientCommands(program);

// `aiaas … | head` closes stdout early: end quietly, as Unix tools do.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
// Bare `aiaas` prints its help on stdout and exits 0.
if (process.argv.length <= 2) program.help();
await program.parseAsync(process.argv);
