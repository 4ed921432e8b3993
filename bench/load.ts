// Load generators for the benchmark: closed-loop grpc-js unary and streaming clients, and h2load.
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { Metadata, type Client } from "@grpc/grpc-js";
import { connect as connectHttp2 } from "node:http2";
import { PredictRequest, PredictStreamResponse, type InferenceClient } from "@aiaas/sdk/gen";
import { framed } from "../server/src/rpc/grpc-wire.js";
import { MessageFrames } from "@aiaas/sdk/wire";

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Requests answered successfully in the measured period (h2load's count; the latencies' otherwise). */
  readonly succeeded?: number;
}

export function summarize(latenciesMs: number[], seconds: number, errors: number): LoadResult {
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
  return { requests: sorted.length, seconds, perSecond: sorted.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99), errors };
}

/** `concurrency` callers, each sending its next call when the previous one answers, for `seconds`. */
export async function unaryLoad(call: (done: (error: unknown) => void) => void, concurrency: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = (): Promise<void> =>
    new Promise((resolve) => {
      const next = (): void => {
        if (performance.now() >= end) return resolve();
        const start = performance.now();
        call((error) => {
          if (error) errors++;
          else latencies.push(performance.now() - start);
          next();
        });
      };
      next();
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summarize(latencies, (performance.now() - started) / 1000, errors);
}

/**
 * The closed loop of one stream's load: `send(id)` writes a request, `answered` times an answer by its id and
 * sends the next request until `seconds` have passed, then ends the stream once.
 */
function streamLoop(seconds: number, write: (id: string) => void, end: () => void) {
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  let errors = 0;
  let id = 0;
  let stopping = false;
  const send = (): void => {
    const key = String(id++);
    sentAt.set(key, performance.now());
    write(key);
  };
  return {
    send,
    answered(response: PredictStreamResponse): void {
      const key = response.result?.value.id ?? "";
      const t = sentAt.get(key);
      sentAt.delete(key);
      if (response.result?.$case === "error") errors++;
      else if (t !== undefined) latencies.push(performance.now() - t);
      if (performance.now() < until) send();
      else if (!stopping) {
        stopping = true;
        end();
      }
    },
    result: (): LoadResult => summarize(latencies, (performance.now() - started) / 1000, errors),
  };
}

/** One PredictStream with `inflight` requests outstanding at all times. */
export async function streamLoad(client: InferenceClient, request: PredictRequest, inflight: number, seconds: number): Promise<LoadResult> {
  const stream = client.predictStream();
  const loop = streamLoop(seconds, (id) => stream.write({ ...request, id }), () => stream.end());
  await new Promise<void>((resolve, reject) => {
    stream.on("data", loop.answered);
    stream.on("end", resolve);
    stream.on("error", reject);
    for (let i = 0; i < inflight; i++) loop.send();
  });
  return loop.result();
}

/**
 * The same load as streamLoad on a PredictStream spoken over node:http2 directly, with no gRPC library: the
 * messages framed and parsed here, the writes of one turn corked into one. What a client with a stream
 * transport of its own (as the server has) would spend per call, beside grpc-js's client.
 */
export async function http2StreamLoad(address: string, request: PredictRequest, inflight: number, seconds: number): Promise<LoadResult> {
  const session = connectHttp2(`http://${address}`);
  const stream = session.request({ ":method": "POST", ":path": "/aiaas.v1.Inference/PredictStream", "content-type": "application/grpc", te: "trailers" });
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  const write = (id: string): void => {
    const bytes = PredictRequest.encode({ ...request, id }).finish();
    const frame = framed(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    stream.write(frame);
  };
  const loop = streamLoop(seconds, write, () => stream.end());
  const frames = new MessageFrames(-1, (_compressed, payload) => loop.answered(PredictStreamResponse.decode(payload)));
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on("data", (chunk: Buffer) => frames.read(chunk));
      stream.on("trailers", (trailers) => (trailers["grpc-status"] === "0" ? resolve() : reject(new Error(`PredictStream ended ${trailers["grpc-status"]}`))));
      stream.on("error", reject);
      session.on("error", reject);
      for (let i = 0; i < inflight; i++) loop.send();
    });
  } finally {
    session.close();
  }
  return loop.result();
}

export function unaryCaller(client: Client, path: string, payload: Buffer): (done: (error: unknown) => void) => void {
  const identity = (b: Buffer): Buffer => b;
  return (done) => client.makeUnaryRequest(path, identity, identity, payload, new Metadata(), {}, (error) => done(error));
}

const run = promisify(execFile);

/**
 * h2load posting a prebuilt gRPC frame: a native load generator, so the server (not a JS client) is what
 * is measured. `inflight` = connections x streams per connection.
 */
export async function h2load(url: string, frameFile: string, inflight: number, seconds: number, logFile: string, warmUp = true): Promise<LoadResult> {
  const connections = Math.min(inflight, 4);
  const streams = Math.ceil(inflight / connections);
  const args = [
    "-D", String(seconds), ...(warmUp ? ["--warm-up-time=1"] : []), "-c", String(connections), "-m", String(streams), "-t", "1",
    "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", frameFile, "--log-file", logFile, url,
  ];
  await rm(logFile, { force: true });
  const { stdout } = await run("h2load", args, { maxBuffer: 16 << 20 });
  const log = await readFile(logFile, "utf8");
  const latencies: number[] = [];
  for (const line of log.split("\n")) {
    const [, statusCode, micros] = line.split("\t");
    if (micros && statusCode === "200") latencies.push(Number(micros) / 1000);
  }
  // Throughput from h2load's own summary of the measured period (the log may include the warm-up).
  const perSecond = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? NaN);
  const failed = Number(/(\d+) failed/.exec(stdout)?.[1] ?? 0) + Number(/(\d+) errored/.exec(stdout)?.[1] ?? 0);
  const succeeded = Number(/(\d+) succeeded/.exec(stdout)?.[1] ?? NaN);
  return { ...summarize(latencies, seconds, failed), perSecond, succeeded };
}

/** h2load sending exactly `requests` requests (no time limit, no warm-up); returns how many failed. */
export async function h2loadCount(url: string, frameFile: string, inflight: number, requests: number, logFile: string): Promise<{ failed: number }> {
  const connections = Math.min(inflight, 4);
  const streams = Math.ceil(inflight / connections);
  const args = ["-n", String(requests), "-c", String(connections), "-m", String(streams), "-t", "1", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", frameFile, "--log-file", logFile, url];
  const { stdout } = await run("h2load", args, { maxBuffer: 16 << 20 });
  return { failed: Number(/(\d+) failed/.exec(stdout)?.[1] ?? 0) + Number(/(\d+) errored/.exec(stdout)?.[1] ?? 0) };
}
