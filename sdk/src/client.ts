import { Metadata, type CallOptions as GrpcCallOptions, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { InferenceClient, type PredictRequest, type PredictResponse } from "./gen/aiaas/v1/inference.js";
import { ModelsClient, type Model } from "./gen/aiaas/v1/models.js";
import { TrainingClient, type Job, type TrainEvent as WireTrainEvent, type TrainRequest } from "./gen/aiaas/v1/training.js";
import { jobFromWire, trainEventFromWire, type JobInfo, type TrainEvent } from "./train-events.js";
import { trainSpecToWire, type TrainSpecInput } from "./train-spec.js";
import { TensorEncoding } from "./gen/aiaas/v1/tensor.js";
import type { CallOptions, ClientOptions } from "./client-options.js";
import { AiaasError, Code } from "./errors.js";
import { createChannel } from "./internal/channel.js";
import { createPredictMux } from "./internal/predict-mux.js";
import { retryPolicy, withRetry } from "./internal/retry.js";
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
   * Runs a model on named input tensors. Calls that overlap are carried over one shared stream (far cheaper
   * for the client than a unary call each) while each keeps its own deadline, cancellation and error.
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
  const mux = createPredictMux(inference, metadata);
  let inflight = 0;

  /** A unary call with a deadline, cancellation by signal and retries, as a promise. */
  const call = <Req, Res>(
    method: (req: Req, md: Metadata, opts: Partial<GrpcCallOptions>, cb: (e: ServiceError | null, r?: Res) => void) => ClientUnaryCall,
    request: Req,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Res> =>
    new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(new AiaasError(Code.CANCELLED, "the call was cancelled"));
      const onAbort = (): void => c.cancel();
      const c = method(request, metadata(), { deadline: new Date(deadline) }, (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(signal?.aborted && signal.reason instanceof AiaasError ? signal.reason : AiaasError.from(error));
        else resolve(response as Res);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });

  const deadlineOf = (o: CallOptions | undefined): number => Date.now() + (o?.timeoutMs ?? defaultTimeoutMs);
  const retried = <T>(o: CallOptions | undefined, attempt: (deadline: number) => Promise<T>): Promise<T> => {
    const deadline = deadlineOf(o);
    return withRetry(() => attempt(deadline), policy, deadline, o?.signal);
  };
  const modelCall = (method: "getModel" | "loadModel" | "unloadModel", name: string, o?: CallOptions): Promise<ModelInfo> =>
    retried(o, async (deadline) => {
      const res = await call<{ name: string }, { model?: Model }>(models[method].bind(models) as never, { name }, deadline, o?.signal);
      return toModelInfo(res.model!);
    });

  function predictStream(
    first?: { readonly signal?: AbortSignal } | AsyncIterable<StreamRequest> | Iterable<StreamRequest>,
    second?: { readonly signal?: AbortSignal },
  ): PredictStream | AsyncIterable<StreamResult> {
    const isSource = first !== undefined && (Symbol.asyncIterator in first || Symbol.iterator in first);
    const signal = isSource ? second?.signal : (first as { signal?: AbortSignal } | undefined)?.signal;
    const stream = openPredictStream(inference.predictStream(metadata()), signal);
    if (!isSource) return stream;
    const source = first as AsyncIterable<StreamRequest> | Iterable<StreamRequest>;
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

  const jobCall = (method: "getJob" | "cancelJob", jobId: string, o?: CallOptions): Promise<JobInfo> =>
    retried(o, async (deadline) => {
      const res = await call<{ jobId: string }, { job?: Job }>(training[method].bind(training) as never, { jobId }, deadline, o?.signal);
      return jobFromWire(res.job!);
    });

  /** Events of a server stream as an AsyncIterable, with the stream's failure as an AiaasError. */
  async function* events(stream: AsyncIterable<WireTrainEvent> & { cancel(): void }, signal: AbortSignal | undefined, writeFailure?: () => unknown): AsyncGenerator<TrainEvent> {
    const onAbort = (): void => stream.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    try {
      for await (const event of stream) yield trainEventFromWire(event);
      finished = true;
    } catch (error) {
      const failure = writeFailure?.();
      if (failure) throw failure;
      if (signal?.aborted) throw signal.reason instanceof AiaasError ? signal.reason : new AiaasError(Code.CANCELLED, "the call was cancelled");
      throw AiaasError.from(error as ServiceError);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!finished) stream.cancel();
    }
  }

  return {
    train(spec, examples, o) {
      const wireSpec = trainSpecToWire(spec);
      const stream = training.train(metadata());
      let failure: unknown;
      const write = async (message: TrainRequest): Promise<void> => {
        if (stream.write(message)) return;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off("drain", done);
            stream.off("close", done);
            resolve();
          };
          stream.once("drain", done);
          stream.once("close", done);
        });
      };
      void (async () => {
        await write({ message: { $case: "spec", value: wireSpec } });
        for await (const chunk of examples) {
          if (stream.destroyed || stream.writableEnded) return;
          await write({
            message: {
              $case: "data",
              value: {
                inputs: Object.entries(chunk.inputs).map(([name, t]) => tensorToWire(name, t)),
                labels: tensorToWire("labels", chunk.labels),
                validation: chunk.validation ?? false,
              },
            },
          });
        }
        stream.end();
      })().catch((error: unknown) => {
        // The examples failed to produce: the upload is broken, so the job must not train on part of it.
        failure =
          error instanceof AiaasError ? error : new AiaasError(Code.CANCELLED, `train: reading the examples failed: ${(error as Error).message}`, { cause: error });
        stream.cancel();
      });
      return events(stream, o?.signal, () => failure);
    },
    jobs: {
      get: (jobId, o) => jobCall("getJob", jobId, o),
      cancel: (jobId, o) => jobCall("cancelJob", jobId, o),
      list: (o) =>
        retried(o, async (deadline) => {
          const res = await call<object, { jobs: Job[] }>(training.listJobs.bind(training) as never, { tenant: o?.tenant ?? "" }, deadline, o?.signal);
          return res.jobs.map(jobFromWire);
        }),
      watch: (jobId, o) => events(training.watchJob({ jobId, afterEventId: o?.afterEventId ?? 0n }, metadata()), o?.signal),
    },
    async predict<O extends string = string>(model: string, inputs: Readonly<Record<string, Tensor>>, o?: PredictOptions): Promise<PredictResult<O>> {
      const request: PredictRequest = {
        model,
        version: o?.version ?? "",
        id: "",
        inputs: Object.entries(inputs).map(([name, tensor]) => tensorToWire(name, tensor)),
        outputs: [...(o?.outputs ?? [])],
        outputEncoding: TensorEncoding.TENSOR_ENCODING_RAW,
        timeoutMs: 0,
      };
      inflight++;
      try {
        const response = await retried(o, (deadline) =>
          // Alone, a unary call has the lowest latency; alongside others, the shared stream scales.
          inflight > 1 ? mux.predict(request, deadline, o?.signal) : call<PredictRequest, PredictResponse>(inference.predict.bind(inference) as never, request, deadline, o?.signal),
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
        retried(o, async (deadline) => {
          const res = await call<object, { models: Model[] }>(models.listModels.bind(models) as never, {}, deadline, o?.signal);
          return res.models.map(toModelInfo);
        }),
      get: (name, o) => modelCall("getModel", name, o),
      load: (name, o) => modelCall("loadModel", name, o),
      unload: (name, o) => modelCall("unloadModel", name, o),
    },
    close() {
      mux.close();
      inference.close();
      models.close();
      training.close();
      channel.close();
    },
  };
}
