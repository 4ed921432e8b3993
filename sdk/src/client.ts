import { Metadata, type CallOptions as GrpcCallOptions, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { InferenceClient, type PredictRequest, type PredictResponse } from "./gen/aiaas/v1/inference.js";
import { ModelsClient, type Model } from "./gen/aiaas/v1/models.js";
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
  close(): void;
}

/** Connects to aiaas: `createClient({ address: "localhost:50051" })`. The connection is made lazily. */
export function createClient(options: ClientOptions): AiaasClient {
  const channel = createChannel(options);
  const inference = new InferenceClient("unused", null as never, { channelOverride: channel });
  const models = new ModelsClient("unused", null as never, { channelOverride: channel });
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

  return {
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
      channel.close();
    },
  };
}
