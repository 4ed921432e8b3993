import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { AiaasError, Code, createClient, type ModelInfo, type Tensor, type TlsOptions } from "@aiaas/sdk";
import { inputFromJson, tensorToJson } from "./json-tensor.js";
import { addTrainCommand } from "./train-command.js";
import { addKeysCommand } from "./keys-command.js";
import { addJobsCommand } from "./jobs-command.js";
import { examples, table } from "./table.js";

interface ConnectionOptions {
  address: string;
  apiKey?: string;
  timeout: number;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The SDK's tls option from --tls / --tls-ca / --tls-cert / --tls-key (any of them turns TLS on). */
export function tlsOption(opts: { tls?: boolean; tlsCa?: string; tlsCert?: string; tlsKey?: string }): TlsOptions | undefined {
  if (!opts.tls && !opts.tlsCa && !opts.tlsCert && !opts.tlsKey) return undefined;
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new Error("--tls-cert and --tls-key go together");
  return {
    ca: opts.tlsCa ? readFileSync(opts.tlsCa) : undefined,
    cert: opts.tlsCert ? readFileSync(opts.tlsCert) : undefined,
    key: opts.tlsKey ? readFileSync(opts.tlsKey) : undefined,
  };
}

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number of milliseconds");
  return n;
};

function connectionOptions(command: Command): Command {
  return command
    .addOption(new Option("--address <host:port>", "the server").env("AIAAS_ADDRESS").default("localhost:50051"))
    .addOption(new Option("--api-key <key>", "API key, sent as a Bearer token").env("AIAAS_API_KEY"))
    .option("--timeout <ms>", "deadline of each call", positive, 30_000)
    .option("--tls", "connect over TLS, trusting the system's CAs")
    .option("--tls-ca <file>", "connect over TLS, trusting this PEM CA")
    .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS, with --tls-key")
    .option("--tls-key <file>", "client key (PEM) for mutual TLS");
}

/** Exit codes: 0 done, 1 the server refused or failed the call, 2 bad arguments or input files. */
async function guard(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof AiaasError) {
      console.error(`error: ${Code[error.code] ?? error.code}: ${error.details}`);
      process.exitCode = 1;
    } else {
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 2;
    }
  }
}

const dims = (shape: readonly number[]): string => `[${shape.join(", ")}]`;

function describe(models: ModelInfo[]): string {
  if (models.length === 0) return "no models";
  const rows = models.map((m) => {
    const v = m.versions.find((x) => x.state === "ready") ?? m.versions[0];
    const io = v ? `${v.inputs.map((i) => `${i.name} ${i.type} ${dims(i.shape)}`).join(", ")} -> ${v.outputs.map((o) => `${o.name} ${o.type} ${dims(o.shape)}`).join(", ")}` : "";
    return [m.name, m.state, m.versions.map((x) => x.version).join(",") || "-", String(m.maxBatchSize), m.providers.join(",") || "-", io || m.reason];
  });
  return table(["MODEL", "STATE", "VERSIONS", "MAX BATCH", "PROVIDER", "INPUTS -> OUTPUTS"], rows);
}

export function addClientCommands(program: Command): void {
  addTrainCommand(program, connectionOptions, guard, tlsOption);
  addKeysCommand(program, guard, tlsOption);

  addJobsCommand(program, connectionOptions, guard, (opts: ConnectionOptions) =>
    createClient({ address: opts.address, apiKey: opts.apiKey, tls: tlsOption(opts), defaultTimeoutMs: opts.timeout, retry: { maxAttempts: 1 } }),
  );

  connectionOptions(program.command("models").description("list the models a server serves"))
    .option("--json", "print JSON instead of a table")
    .addHelpText("after", examples("aiaas models", "aiaas models --json --address models.internal:50051"))
    .action((opts: ConnectionOptions & { json?: boolean }) =>
      guard(async () => {
        const client = createClient({ address: opts.address, apiKey: opts.apiKey, tls: tlsOption(opts), defaultTimeoutMs: opts.timeout, retry: { maxAttempts: 1 } });
        try {
          const models = await client.models.list();
          console.log(opts.json ? JSON.stringify(models, null, 2) : describe(models));
        } finally {
          client.close();
        }
      }),
    );

  connectionOptions(
    program
      .command("predict <model>")
      .description("run a model on JSON tensors (grpcurl's JSON shape) and print its outputs as JSON")
      .requiredOption(
        "--input <name=file.json...>",
        'an input read from a JSON file (repeat for each input): one tensor, {"datatype": "DATA_TYPE_FP32", "shape": [1, 784], "fp32_data": [...]}, or a whole request as grpcurl sends it ({"model": ..., "inputs": [...]}: the input of that name)',
      )
      .option("--output <name...>", "outputs to return (default: all)")
      .option("--model-version <n>", "a version number (default: the latest ready)")
      .addHelpText(
        "after",
        examples(
          "aiaas predict mnist-linear --input image=examples/requests/digit.json",
          "aiaas predict mnist-linear --input image=examples/requests/predict-digit.json --output probabilities",
        ),
      ),
  ).action((model: string, opts: ConnectionOptions & { input: string[]; output?: string[]; modelVersion?: string }) =>
    guard(async () => {
      const inputs: Record<string, Tensor> = {};
      for (const spec of opts.input) {
        const at = spec.indexOf("=");
        if (at <= 0) throw new Error(`--input ${spec}: expected name=file.json`);
        const [name, file] = [spec.slice(0, at), spec.slice(at + 1)];
        let json: unknown;
        try {
          json = JSON.parse(await readFile(file, "utf8"));
        } catch (error) {
          throw new Error(`--input ${name}: cannot read ${file}: ${(error as Error).message}`);
        }
        try {
          inputs[name] = inputFromJson(json, name, `--input ${name} (${file})`);
        } catch (error) {
          // A tensor the SDK refuses (values not filling the shape) is a bad input file: exit 2, not 1. The
          // file's own errors already say where they are.
          if (!(error instanceof AiaasError)) throw error;
          throw new Error(`--input ${name} (${file}): ${error.details}`);
        }
      }
      const client = createClient({ address: opts.address, apiKey: opts.apiKey, tls: tlsOption(opts), defaultTimeoutMs: opts.timeout, retry: { maxAttempts: 1 } });
      try {
        const result = await client.predict(model, inputs, { outputs: opts.output, version: opts.modelVersion });
        const outputs = Object.entries(result.outputs).map(([name, t]) => tensorToJson(name, t));
        console.log(JSON.stringify({ model: result.model, version: result.version, outputs }, null, 2));
      } finally {
        client.close();
      }
    }),
  );
}
