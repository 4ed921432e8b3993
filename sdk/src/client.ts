import { Metadata } from "@grpc/grpc-js";
import { InferenceClient, InferenceService, type PredictRequest } from "./gen/aiaas/v1/inference.js";
import { ModelsClient, ModelsService } from "./gen/aiaas/v1/models.js";
import { TrainingClient, TrainingService } from "./gen/aiaas/v1/training.js";
import { jobFromWire, type JobInfo, type TrainEvent } from "./train-events.js";
import { trainSpecToWire, type TrainSpecInput } from "./train-spec.js";
import { TensorEncoding } from "./gen/aiaas/v1/tensor.js";
import type { CallOptions, ClientOptions } from "./client-options.js";
import { addressesOf, createChannel, keepaliveOf } from "./internal/channel.js";
import { H2Connection, h2Target } from "./internal/h2-connection.js";
import { grpcJsPredictCalls, h2PredictCalls, type OpenPredictCall } from "./internal/predict-calls.js";
import { createPredictMux } from "./internal/predict-mux.js";
import { retryPolicy, withRetry } from "./internal/retry.js";
import { startTraining, trainEvents } from "./internal/train-call.js";
import { trafficSamples, type TrafficSample } from "./traffic.js";
import { grpcJsUnary, type UnaryCaller } from "./internal/unary-call.js";
import { h2Unary } from "./internal/h2-unary.js";
import { toModelInfo, type ModelInfo } from "./model-info.js";
import { openPredictStream, type PredictStream, type StreamRequest, type StreamResult } from "./predict-stream.js";
import { tensorFromWire, tensorToWire, type Tensor } from "./tensor.js";

export interface PredictOptions extends CallOptions {
  /** A version number; the latest ready version when absent. */
  readonly version?: string;
  /** The outputs to return; all when absent. */
  readonly outputs?: readonly string[];
}

/** A model's answer: outputs by name, and the version that produced them. */
export interface PredictResult<O extends string = string> {
  readonly model: string;
  readonly version: string;
  readonly outputs: Record<O, Tensor>;
}

/** Reading and changing what the server serves. */
export interface ModelsApi {
  list(options?: CallOptions): Promise<ModelInfo[]>;
  /** NOT_FOUND when the server has no such model. */
  get(name: string, options?: CallOptions): Promise<ModelInfo>;
  /** (Re)loads a model from the server's repository; no request fails during a reload. */
  load(name: string, options?: CallOptions): Promise<ModelInfo>;
  unload(name: string, options?: CallOptions): Promise<ModelInfo>;
  /**
   * The traffic of the models this key may see (an admin's: all), one sample per interval: first the samples
   * the server keeps (10 minutes), then each new one, until `signal` aborts.
   */
  watchTraffic(options?: { readonly model?: string; readonly liveOnly?: boolean; readonly signal?: AbortSignal }): AsyncIterable<TrafficSample>;
}

/** A chunk of labelled examples for train(): any number of rows; the server rebatches. */
export interface TrainChunk {
  /** One tensor per model input, each [rows, ...input shape]. */
  readonly inputs: Readonly<Record<string, Tensor>>;
  /** [rows] int64 class ids (classification) or [rows, ...output shape] float targets (regression). */
  readonly labels: Tensor;
  /** Rows for validation instead of training. */
  readonly validation?: boolean;
}

/** Training jobs on the server: they outlive the stream that uploaded their data. */
export interface JobsApi {
  get(jobId: string, options?: CallOptions): Promise<JobInfo>;
  /** Newest first. An admin key lists every tenant's jobs, or one tenant's with `tenant`. */
  list(options?: CallOptions & { readonly tenant?: string }): Promise<JobInfo[]>;
  /** Stops a job; nothing is published. */
  cancel(jobId: string, options?: CallOptions): Promise<JobInfo>;
  /** The job's events after `afterEventId` (0: all), then live ones until it ends. */
  watch(jobId: string, options?: { readonly afterEventId?: bigint; readonly signal?: AbortSignal }): AsyncIterable<TrainEvent>;
}

/** A client of one aiaas deployment. All calls share one channel; `close()` releases it. */
export interface AiaasClient {
  /**
   * Runs a model on named input tensors. Calls are carried over one shared stream (far cheaper for the client
   * than a unary call each, and quicker alone too) while each keeps its own deadline, cancellation and error;
   * the stream closes 100 ms after the last call answers. A call of 1 MiB of tensors or more is a unary call
   * of its own; so is, with several addresses, a call made while no other is in flight, so that such calls
   * are balanced over them.
   */
  predict<O extends string = string>(model: string, inputs: Readonly<Record<string, Tensor>>, options?: PredictOptions): Promise<PredictResult<O>>;
  /** Opens a prediction stream to send requests on and iterate results from. */
  predictStream(options?: { readonly signal?: AbortSignal }): PredictStream;
  /** Streams the requests of an AsyncIterable and yields each one's result as it arrives. */
  predictStream(requests: AsyncIterable<StreamRequest> | Iterable<StreamRequest>, options?: { readonly signal?: AbortSignal }): AsyncIterable<StreamResult>;
  readonly models: ModelsApi;
  /**
   * Trains: sends the spec and the examples, yields the job's events (state changes, metrics, validation,
   * checkpoints, completion with the published model version). A failed job ends the iteration with an
   * AiaasError carrying its status after its `failed` event.
   */
  train(spec: TrainSpecInput, examples: AsyncIterable<TrainChunk> | Iterable<TrainChunk>, options?: { readonly signal?: AbortSignal }): AsyncIterable<TrainEvent>;
  readonly jobs: JobsApi;
  close(): void;
}

/** Connects to aiaas: `createClient({ address: "localhost:50051" })`. The connection is made lazily. */
export function createClient(options: ClientOptions): AiaasClient {
  const channel = createChannel(options);
  const inference = new InferenceClient("unused", null as never, { channelOverride: channel });
  const models = new ModelsClient("unused", null as never, { channelOverride: channel });
  const training = new TrainingClient("unused", null as never, { channelOverride: channel });
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
  const policy = retryPolicy(options.retry);
  const metadata = (): Metadata => {
    const md = new Metadata();
    if (options.apiKey) md.set("authorization", `Bearer ${options.apiKey}`);
    return md;
  };
  const { openCall, call, connection } = transports(options, inference, metadata);
  const mux = createPredictMux(openCall);
  // A stream message answers in about two thirds of a unary call's time; with several addresses a call made
  // alone stays unary, so that calls made one at a time are balanced over them.
  const loneCallsOnStream = addressesOf(options).length === 1;
  let inflight = 0;

  const deadlineOf = (o: CallOptions | undefined): number => Date.now() + (o?.timeoutMs ?? defaultTimeoutMs);
  const retried = <T>(o: CallOptions | undefined, attempt: (deadline: number) => Promise<T>): Promise<T> => {
    const deadline = deadlineOf(o);
    return withRetry(() => attempt(deadline), policy, deadline, o?.signal);
  };
  const modelCall = (method: "getModel" | "loadModel" | "unloadModel", name: string, o?: CallOptions): Promise<ModelInfo> =>
    retried(o, async (deadline) => {
      const res = await call(ModelsService[method], { name }, deadline, o?.signal);
      return toModelInfo(res.model!);
    });

  function predictStream(
    first?: { readonly signal?: AbortSignal } | AsyncIterable<StreamRequest> | Iterable<StreamRequest>,
    second?: { readonly signal?: AbortSignal },
  ): PredictStream | AsyncIterable<StreamResult> {
    const isSource = first !== undefined && (Symbol.asyncIterator in first || Symbol.iterator in first);
    const signal = isSource ? second?.signal : (first as { signal?: AbortSignal } | undefined)?.signal;
    const stream = openPredictStream(openCall, signal);
    return isSource ? pipeInto(stream, first as AsyncIterable<StreamRequest> | Iterable<StreamRequest>) : stream;
  }

  const jobCall = (method: "getJob" | "cancelJob", jobId: string, o?: CallOptions): Promise<JobInfo> =>
    retried(o, async (deadline) => {
      const res = await call(TrainingService[method], { jobId }, deadline, o?.signal);
      return jobFromWire(res.job!);
    });

  return {
    train: (spec, examples, o) => startTraining(training, metadata(), trainSpecToWire(spec), examples, o?.signal),
    jobs: {
      get: (jobId, o) => jobCall("getJob", jobId, o),
      cancel: (jobId, o) => jobCall("cancelJob", jobId, o),
      list: (o) =>
        retried(o, async (deadline) => {
          const res = await call(TrainingService.listJobs, { tenant: o?.tenant ?? "" }, deadline, o?.signal);
          return res.jobs.map(jobFromWire);
        }),
      watch: (jobId, o) => trainEvents(training.watchJob({ jobId, afterEventId: o?.afterEventId ?? 0n }, metadata()), o?.signal),
    },
    async predict<O extends string = string>(model: string, inputs: Readonly<Record<string, Tensor>>, o?: PredictOptions): Promise<PredictResult<O>> {
      const request = predictRequest(model, inputs, o);
      inflight++;
      try {
        const onStream = (inflight > 1 || loneCallsOnStream) && bytesOf(request) < MUX_MAX_BYTES;
        const response = await retried(o, (deadline) =>
          onStream ? mux.predict(request, deadline, o?.signal) : call(InferenceService.predict, request, deadline, o?.signal),
        );
        const outputs = {} as Record<O, Tensor>;
        for (const t of response.outputs) outputs[t.name as O] = tensorFromWire(t);
        return { model: response.model, version: response.version, outputs };
      } finally {
        inflight--;
      }
    },
    predictStream: predictStream as AiaasClient["predictStream"],
    models: {
      list: (o) =>
        retried(o, async (deadline) => (await call(ModelsService.listModels, {}, deadline, o?.signal)).models.map(toModelInfo)),
      get: (name, o) => modelCall("getModel", name, o),
      load: (name, o) => modelCall("loadModel", name, o),
      unload: (name, o) => modelCall("unloadModel", name, o),
      watchTraffic: (o) => trafficSamples(models.watchTraffic({ model: o?.model ?? "", liveOnly: o?.liveOnly ?? false }, metadata()), o?.signal),
    },
    close() {
      mux.close();
      connection?.close();
      inference.close();
      models.close();
      training.close();
      channel.close();
    },
  };
}

/**
 * Unary calls and PredictStreams (predict()'s shared stream and predictStream()'s) go on a connection of the
 * SDK's own (node:http2: about half grpc-js's client CPU per message) where the client names one host:port
 * and sets no grpc-js channel options; on grpc-js's channel otherwise. Train and the watches stay on grpc-js.
 */
function transports(options: ClientOptions, inference: InferenceClient, metadata: () => Metadata): { openCall: OpenPredictCall; call: UnaryCaller; connection: H2Connection | undefined } {
  const h2 = h2Target(options);
  if (!h2) return { openCall: grpcJsPredictCalls(inference, metadata), call: grpcJsUnary(inference, metadata), connection: undefined };
  const connection = new H2Connection(h2.url, h2.options, keepaliveOf(options));
  const server = options.address!;
  return { openCall: h2PredictCalls(connection, options.apiKey, server), call: h2Unary(connection, options.apiKey, server), connection };
}

function predictRequest(model: string, inputs: Readonly<Record<string, Tensor>>, o: PredictOptions | undefined): PredictRequest {
  return {
    model,
    version: o?.version ?? "",
    id: "",
    inputs: Object.entries(inputs).map(([name, tensor]) => tensorToWire(name, tensor)),
    outputs: [...(o?.outputs ?? [])],
    outputEncoding: TensorEncoding.TENSOR_ENCODING_RAW,
    timeoutMs: 0,
  };
}

/**
 * A call whose tensors hold this many bytes or more goes alone (unary): on the shared stream it would hold up
 * the calls behind it while its bytes cross, and one over the server's message limit would end the stream,
 * and with it every other call in flight.
 */
const MUX_MAX_BYTES = 1 << 20;

const bytesOf = (request: PredictRequest): number => request.inputs.reduce((n, t) => n + t.rawData.byteLength, 0);

/** Sends a source's requests on a stream, ends it when the source ends, cancels it when the source fails. */
function pipeInto(stream: PredictStream, source: AsyncIterable<StreamRequest> | Iterable<StreamRequest>): PredictStream {
  void (async () => {
    try {
      for await (const request of source) stream.send(request);
      stream.end();
    } catch {
      stream.cancel();
    }
  })();
  return stream;
}
