#!/usr/bin/env node
import { Command, type OptionValues } from "commander";
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { addClientCommands } from "../cli/client-commands.js";
import { examples } from "../cli/table.js";
import { installTelemetry } from "../telemetry/setup.js";
import { startServer } from "../server.js";
import { SERVE_SETTINGS, flagOf, loadServeConfig, readConfigFile, type Setting } from "../config/index.js";
import { serveOptionsFrom } from "../serve-options-from-config.js";
import { Code, ServerError, invalidArgument } from "../common/errors.js";
import { isPoolProcess, poolDatabase, resolveProcesses, runProcessPool, serveAsPoolProcess } from "../process-pool.js";
import { resolve } from "node:path";

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

const serveCommand = program
  .command("serve")
  .description("serve a model repository over gRPC (every flag also reads from AIAAS_<FLAG> and from --config)")
  .option("--config <file>", "a YAML or JSON file of settings (keys as the flags, e.g. max-queue-size: 8192); flags and AIAAS_* variables win over it");
// Every setting's flag comes from the one table of settings (config/serve-config.ts); no commander defaults,
// so the config can tell a flag given from one left out and apply AIAAS_* variables and the file under it.
for (const [key, setting] of Object.entries(SERVE_SETTINGS) as [string, Setting<unknown>][]) {
  const shown = setting.default === undefined || setting.default === false ? "" : ` (default: ${Array.isArray(setting.default) ? setting.default.join(",") : String(setting.default)})`;
  serveCommand.option(setting.value ? `${flagOf(key)} <${setting.value}>` : flagOf(key), `${setting.help}${shown}`);
}
serveCommand
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
      pino({ name: "aiaas", level: opts.logLevel ?? "info" }).debug({ err: error }, "startup failed");
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
  const configPath = opts.config ?? process.env.AIAAS_CONFIG;
  const file = configPath ? await readConfigFile(configPath) : undefined;
  const flags = Object.fromEntries(Object.keys(SERVE_SETTINGS).map((key) => [key, opts[key]]));
  const config = loadServeConfig({ flags, env: process.env, file });
  const logger = pino({ name: "aiaas", level: config.logLevel });
  const processes = resolveProcesses(config.processes);
  const inPool = isPoolProcess();
  if (processes > 1 && !inPool) {
    if (!config.databaseUrl && !config.stateDir) {
      throw invalidArgument("--processes above 1 shares jobs, keys, quotas and model control through the state database: give a --state-dir (its embedded database, served by the primary) or --database-url, not --state-dir none");
    }
    const stateDir = config.databaseUrl ? undefined : resolve(config.stateDir!);
    await runProcessPool({ processes, stateDir, http: config.httpPort >= 0 ? { host: config.host, port: config.httpPort } : undefined, logger });
    process.exit(0);
  }
  const telemetry = installTelemetry({ prometheus: config.httpPort >= 0 });
  if (telemetry.otlp.traces || telemetry.otlp.metrics) {
    logger.info({ otlp: telemetry.otlp }, "exporting OpenTelemetry over OTLP/HTTP (OTEL_* environment)");
  }
  const options = await serveOptionsFrom(config, { logger, metrics: telemetry.metricsHandler, env: process.env });
  // In a pool the primary serves the operations port; this process answers it through the primary.
  const pooled = inPool ? { ...options, stateDatabase: poolDatabase(), ...(options.http ? { http: { ...options.http, port: -1 } } : {}) } : options;
  const server = await startServer(pooled);
  if (inPool) serveAsPoolProcess(server);
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
  // In a pool a Ctrl-C reaches every process of the group: the primary drains them (a second signal here would cut the drain short).
  if (!inPool) process.on("SIGINT", () => stop("SIGINT"));
  else process.on("SIGINT", () => undefined);
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
