import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { examples } from "./table.js";
import { AiaasError, Code, Tensor, checkTrainSpecKeys, createClient, type AiaasClient, type TlsOptions, type TrainChunk, type TrainEvent, type TrainSpecInput } from "@aiaas/sdk";

interface TrainOptions {
  readonly address: string;
  readonly apiKey?: string;
  readonly spec: string;
  readonly data: string;
  readonly validationData?: string;
  readonly chunkRows: number;
  readonly json?: boolean;
  readonly tls?: boolean;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

interface InputShape {
  readonly name: string;
  readonly type: "float32" | "int64";
  readonly dims: readonly number[];
}

/** The model inputs rows must fill: from the architecture, or from the base model the server serves. */
async function inputShapes(client: AiaasClient, spec: TrainSpecInput): Promise<InputShape[]> {
  if (spec.architecture) {
    const i = spec.architecture.input;
    return [{ name: i.name ?? "input", type: i.type ?? "float32", dims: i.dims }];
  }
  const info = await client.models.get(spec.baseModel!.name);
  const version = info.versions.find((v) => (spec.baseModel!.version ? v.version === spec.baseModel!.version : v.state === "ready"));
  if (!version) throw new Error(`base model ${spec.baseModel!.name} has no ready version to read the input shapes from`);
  return version.inputs.map((t) => {
    if (t.type !== "float32" && t.type !== "int64") throw new Error(`input "${t.name}" is ${t.type}; the CLI sends float32 or int64 rows`);
    return { name: t.name, type: t.type, dims: t.shape.slice(1).map((d) => (d < 0 ? 0 : d)) };
  });
}

const flat = (value: unknown): number[] => (Array.isArray(value) ? value.flatMap(flat) : [Number(value)]);

/**
 * Rows from a JSON Lines file, chunked: each line is {"inputs": {"<name>": [...]}, "label": 3} (or "input": [...]
 * for a one-input model; nested arrays are flattened; regression labels are arrays).
 */
async function* readChunks(file: string, shapes: InputShape[], chunkRows: number, validation: boolean, regression: boolean): AsyncGenerator<TrainChunk> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let rows: { inputs: number[][]; label: number[] }[] = [];
  let lineNo = 0;
  const flush = (): TrainChunk => {
    const n = rows.length;
    const inputs: Record<string, Tensor> = {};
    shapes.forEach((s, k) => {
      const width = s.dims.reduce((a, b) => a * b, 1);
      const values = rows.flatMap((r) => r.inputs[k]!);
      if (width > 0 && values.length !== n * width) throw new Error(`${file}: a row of "${s.name}" must hold ${width} values (shape [${s.dims}])`);
      const dims = [n, ...s.dims];
      inputs[s.name] = s.type === "int64" ? Tensor.int64(dims, BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)))) : Tensor.float32(dims, Float32Array.from(values));
    });
    const labelWidth = rows[0]!.label.length;
    const labels = regression ? Tensor.float32([n, ...(labelWidth > 1 ? [labelWidth] : [])], rows.flatMap((r) => r.label)) : Tensor.int64([n], rows.map((r) => BigInt(r.label[0]!)));
    rows = [];
    return { inputs, labels, validation };
  };
  for await (const line of lines) {
    lineNo++;
    if (!line.trim()) continue;
    let row: { inputs?: Record<string, unknown>; input?: unknown; label?: unknown };
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${lineNo}: not JSON (${(error as Error).message})`);
    }
    const values = shapes.map((s) => {
      const v = row.inputs?.[s.name] ?? (shapes.length === 1 ? row.input : undefined);
      if (v === undefined) throw new Error(`${file}:${lineNo}: no values for input "${s.name}"`);
      const width = s.dims.reduce((a, b) => a * b, 1);
      const values = flat(v);
      if (width > 0 && values.length !== width) throw new Error(`${file}:${lineNo}: input "${s.name}" has ${values.length} values; a row holds ${width} (shape [${s.dims.join(", ")}])`);
      if (values.some((x) => !Number.isFinite(x))) throw new Error(`${file}:${lineNo}: input "${s.name}" holds a value that is not a finite number`);
      return values;
    });
    if (row.label === undefined) throw new Error(`${file}:${lineNo}: no "label"`);
    const label = flat(row.label);
    if (label.some((x) => !Number.isFinite(x))) throw new Error(`${file}:${lineNo}: "label" is not a number (or a list of numbers)`);
    if (!regression && (label.length !== 1 || !Number.isInteger(label[0]) || label[0]! < 0)) {
      throw new Error(`${file}:${lineNo}: "label" must be a class index (0, 1, 2, …) for classification; got ${JSON.stringify(row.label)}`);
    }
    rows.push({ inputs: values, label });
    if (rows.length >= chunkRows) yield flush();
  }
  if (rows.length > 0) yield flush();
}

/** The job's first event as lines: what it trains, and anything the user should know before it runs. */
function preparedLines(p: Extract<TrainEvent, { type: "prepared" }>): string[] {
  const lines = [`training ${p.trainedTensors} parameter tensors (${p.trainedElements.toLocaleString("en-US")} values)${p.frozen.length ? `, ${p.frozen.length} frozen` : ""}`];
  if (p.shared.length > 0) {
    const named = p.shared.slice(0, 5).map((s) => `${s.parameter} (${s.uses} uses${s.readAs.length ? `, also read as ${s.readAs.join(", ")}` : ""})`);
    lines.push(`shared parameters, trained with the sum of their uses' gradients: ${named.join("; ")}${p.shared.length > 5 ? `; and ${p.shared.length - 5} more` : ""}`);
  }
  for (const note of p.notes) lines.push(`note: ${note}`);
  if (p.unreached.length > 0) lines.push(`not trained (the loss does not depend on them): ${p.unreached.join(", ")}`);
  return lines;
}

function summary(done: Extract<TrainEvent, { type: "completed" }>): string {
  const m = done.metrics;
  const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
  return [
    `published ${done.model} version ${done.version} (stopped by ${done.stopReason})`,
    `  steps ${m.steps}, epochs ${m.epochs}, ${m.seconds.toFixed(1)} s`,
    `  train loss ${m.trainLoss.toFixed(4)}${m.trainAccuracy ? `, accuracy ${pct(m.trainAccuracy)}` : ""}`,
    m.validationRows ? `  validation loss ${m.validationLoss.toFixed(4)}${m.validationAccuracy ? `, accuracy ${pct(m.validationAccuracy)}` : ""} on ${m.validationRows} rows` : "  no validation rows",
  ].join("\n");
}

type MetricsEvent = Extract<TrainEvent, { type: "metrics" }>;

interface Progress {
  update(event: MetricsEvent): void;
  /** Before another line is printed. */
  pause(): void;
  stop(): void;
}

/** A progress bar on a terminal (stderr), drawn once per update. */
function barProgress(): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | acc {acc} | {rate} ex/s | ETA {eta_formatted}",
      hideCursor: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let shown = false;
  return {
    update(e) {
      const payload = { epoch: e.epoch, loss: e.trainLoss.toFixed(4), acc: e.trainAccuracy ? e.trainAccuracy.toFixed(3) : "-", rate: e.examplesPerSecond.toFixed(0) };
      if (!shown) bar.start(e.totalSteps, e.step, payload);
      else bar.update(e.step, payload);
      shown = true;
    },
    pause() {
      if (shown) bar.stop();
      shown = false;
    },
    stop() {
      this.pause();
    },
  };
}

/** Plain progress for pipes and logs: the last metrics of each epoch, one line each. */
function lineProgress(): Progress {
  let last: MetricsEvent | undefined;
  const print = (): void => {
    if (!last) return;
    const e = last;
    console.error(`epoch ${e.epoch}: step ${e.step}/${e.totalSteps}, loss ${e.trainLoss.toFixed(4)}${e.trainAccuracy ? `, accuracy ${(e.trainAccuracy * 100).toFixed(2)}%` : ""}, ${e.examplesPerSecond.toFixed(0)} examples/s`);
    last = undefined;
  };
  return {
    update(e) {
      if (last && e.epoch !== last.epoch) print();
      last = e;
    },
    pause: print,
    stop: print,
  };
}

export function addTrainCommand(
  program: Command,
  connection: (c: Command) => Command,
  guard: (work: () => Promise<void>) => Promise<void>,
  tls: (opts: TrainOptions) => TlsOptions | undefined,
): void {
  connection(
    program
      .command("train")
      .description("train a model from a JSON spec and JSON Lines examples, with a live progress bar")
      .requiredOption("--spec <file.json>", "what to train: the SDK's TrainSpecInput as JSON (model, architecture or baseModel, optimizer, epochs …)")
      .requiredOption("--data <file.jsonl>", 'training rows, one JSON object a line: {"input": [...], "label": 3}, or {"inputs": {"<name>": [...]}, "label": 3} for several inputs (nested lists are flattened; regression labels may be lists)')
      .option("--validation-data <file.jsonl>", "validation rows, same format")
      .option("--chunk-rows <n>", "rows per uploaded chunk", (v) => Number(v), 512)
      .option("--json", "print every event as a JSON line instead of a progress bar")
      .addHelpText(
        "after",
        examples(
          "aiaas train --spec examples/train/spec.json --data examples/train/rows.jsonl",
          "aiaas train --spec spec.json --data train.jsonl --validation-data val.jsonl --json | jq -c 'select(.type == \"validation\")'",
        ),
      ),
  ).action((opts: TrainOptions) =>
    guard(async () => {
      let spec: TrainSpecInput;
      try {
        spec = JSON.parse(await readFile(opts.spec, "utf8")) as TrainSpecInput;
        // A misspelt key ("epoch") is refused here (exit 2), not ignored into a model trained otherwise.
        checkTrainSpecKeys(spec);
      } catch (error) {
        throw new Error(`--spec ${opts.spec}: ${error instanceof AiaasError ? error.details : (error as Error).message}`);
      }
      const client = createClient({ address: opts.address, apiKey: opts.apiKey, tls: tls(opts), retry: { maxAttempts: 1 } });
      // On a terminal a bar redraws in place; in a pipe or a log, one plain line per epoch.
      const progress = process.stderr.isTTY ? barProgress() : lineProgress();
      let localFailure: Error | undefined;
      try {
        const shapes = await inputShapes(client, spec);
        const regression = spec.task === "regression";
        const examples = async function* (): AsyncGenerator<TrainChunk> {
          try {
            yield* readChunks(opts.data, shapes, opts.chunkRows, false, regression);
            if (opts.validationData) yield* readChunks(opts.validationData, shapes, opts.chunkRows, true, regression);
          } catch (error) {
            localFailure = error as Error;
            throw error;
          }
        };
        let done: Extract<TrainEvent, { type: "completed" }> | undefined;
        for await (const event of client.train(spec, examples())) {
          if (opts.json) {
            console.log(JSON.stringify(event, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
          } else if (event.type === "metrics") {
            progress.update(event);
          } else if (event.type === "prepared") {
            progress.pause();
            for (const line of preparedLines(event)) console.error(line);
          } else if (event.type === "state" || event.type === "validation" || event.type === "data" || event.type === "resumed") {
            const line =
              event.type === "state"
                ? `job ${event.jobId}: ${event.state} — ${event.message}`
                : event.type === "resumed"
                  ? `job ${event.jobId}: resumed after a server restart ${event.checkpoint ? `from checkpoint ${event.checkpoint}` : "from the start"}`
                : event.type === "data"
                  ? `uploaded ${event.trainRows} training rows, ${event.validationRows} validation rows (${(event.bytes / 2 ** 20).toFixed(1)} MiB)`
                  : `epoch ${event.epoch}: validation loss ${event.loss.toFixed(4)}${event.accuracy ? `, accuracy ${(event.accuracy * 100).toFixed(2)}%` : ""}`;
            progress.pause();
            console.error(line);
          }
          if (event.type === "completed") done = event;
        }
        progress.stop();
        if (done && !opts.json) console.log(summary(done));
      } catch (error) {
        progress.stop();
        // A local input file the examples could not be read from is a usage error (exit 2), not a server one.
        if (localFailure) throw localFailure;
        throw error instanceof Error ? error : new AiaasError(Code.UNKNOWN, String(error));
      } finally {
        client.close();
      }
    }),
  );
}
