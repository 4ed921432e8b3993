import type { UntypedServiceImplementation } from "@grpc/grpc-js";
// The Open Inference Protocol (package inference, GRPCInferenceService) mapped onto the same registry,
// validation, batcher and codec as aiaas.v1: a Triton or KServe client reaches the same models.
import { status } from "@grpc/grpc-js";
import {
  InferParameter,
  ModelConfigDataType,
  ModelInstanceGroup_Kind,
  type ModelConfig,
  type ModelInferRequest,
  type ModelStatistics,
  type ModelStreamInferResponse,
  type RepositoryIndexResponse_ModelIndex,
  type StatisticDuration,
} from "@aiaas/sdk/gen/inference";
import { DataType, Tensor, TensorEncoding, type PredictRequest } from "@aiaas/sdk/gen";
import { failedPrecondition, invalidArgument, notFound } from "../common/errors.js";
import type { TensorSpec } from "../batching/index.js";
import type { ModelRegistry, ModelStatus, VersionStatus } from "../serving/index.js";
import { DATATYPE_NAME, type TensorType } from "../runtime/index.js";
import type { CallContext } from "./call-context.js";
import { concurrentResponses } from "./concurrent-responses.js";
import { publicError } from "./error-mapping.js";
import { implement } from "./service-builder.js";
import { predict, type InferenceDeps } from "./inference-service.js";
import { encodeModelInferResponse } from "./reply-encoding.js";
import { inferenceProtocolDefinition } from "./zero-copy-service.js";
import { toDataType } from "./tensor-codec.js";

const TO_WIRE: Record<string, DataType> = Object.fromEntries(
  Object.entries(DATATYPE_NAME).map(([type, name]) => [name, toDataType(type as TensorType)]),
);
const TYPE_NAME = DATATYPE_NAME;
const CONFIG_TYPE: Record<TensorType, ModelConfigDataType> = {
  bool: ModelConfigDataType.TYPE_BOOL, uint8: ModelConfigDataType.TYPE_UINT8, uint16: ModelConfigDataType.TYPE_UINT16,
  uint32: ModelConfigDataType.TYPE_UINT32, uint64: ModelConfigDataType.TYPE_UINT64, int8: ModelConfigDataType.TYPE_INT8,
  int16: ModelConfigDataType.TYPE_INT16, int32: ModelConfigDataType.TYPE_INT32, int64: ModelConfigDataType.TYPE_INT64,
  float16: ModelConfigDataType.TYPE_FP16, float32: ModelConfigDataType.TYPE_FP32, float64: ModelConfigDataType.TYPE_FP64,
};

export interface InferenceProtocolDeps extends InferenceDeps {
  readonly serverName: string;
  readonly serverVersion: string;
  /** False while shutting down. */
  readonly isServing: () => boolean;
}

/** A ModelInferRequest as an aiaas.v1 PredictRequest (the same validation and batcher then apply). */
export function toPredictRequest(request: ModelInferRequest): PredictRequest {
  const raw = request.rawInputContents;
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw invalidArgument(`raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs; give one per input, in order`);
  }
  const inputs = request.inputs.map((input, i) => {
    const datatype = TO_WIRE[input.datatype];
    if (datatype === undefined) {
      throw invalidArgument(
        input.datatype === "BYTES" || input.datatype === "BF16"
          ? `input "${input.name}" is ${input.datatype}: ONNX models served by aiaas take numeric and boolean tensors only`
          : `input "${input.name}" has datatype "${input.datatype}"; expected one of ${Object.keys(TO_WIRE).join(", ")}`,
      );
    }
    const c = input.contents;
    if (raw.length > 0 && c && hasContents(c)) throw invalidArgument(`input "${input.name}" has both contents and raw_input_contents; use one`);
    if (c?.bytesContents.length) throw invalidArgument(`input "${input.name}" has bytes_contents: aiaas serves no BYTES tensors`);
    return Tensor.fromPartial({
      name: input.name,
      datatype,
      shape: input.shape,
      rawData: raw.length > 0 ? raw[i] : undefined,
      fp32Data: c?.fp32Contents,
      fp64Data: c?.fp64Contents,
      int32Data: c?.intContents,
      int64Data: c?.int64Contents,
      uint32Data: c?.uintContents,
      uint64Data: c?.uint64Contents,
      boolData: c?.boolContents,
    });
  });
  const timeoutUs = intParameter(request.parameters.timeout, "timeout");
  return {
    model: request.modelName,
    version: request.modelVersion,
    id: request.id,
    inputs,
    outputs: request.outputs.map((o) => o.name),
    outputEncoding: TensorEncoding.TENSOR_ENCODING_RAW,
    timeoutMs: timeoutUs > 0 ? Math.max(1, Math.ceil(timeoutUs / 1000)) : 0,
  };
}

function hasContents(c: NonNullable<ModelInferRequest["inputs"][number]["contents"]>): boolean {
  return c.fp32Contents.length + c.fp64Contents.length + c.intContents.length + c.int64Contents.length + c.uintContents.length + c.uint64Contents.length + c.boolContents.length + c.bytesContents.length > 0;
}

function intParameter(p: InferParameter | undefined, name: string): number {
  const choice = p?.parameterChoice;
  if (!choice) return 0;
  if (choice.$case === "int64Param" || choice.$case === "uint64Param") {
    if (choice.value < 0n) throw invalidArgument(`parameter "${name}" must not be negative`);
    return Number(choice.value);
  }
  throw invalidArgument(`parameter "${name}" must be an int64 or uint64`);
}

/** The reply encoded straight from the outputs (reply-encoding.ts); `wrapped`: as a ModelStreamInferResponse. */
async function modelInfer(deps: InferenceProtocolDeps, request: ModelInferRequest, context: CallContext, wrapped = false): Promise<Buffer> {
  const prediction = await predict(deps, toPredictRequest(request), context, intParameter(request.parameters.priority, "priority"));
  const datatypes = prediction.outputs.map((o) => TYPE_NAME[o.tensor.type]);
  return encodeModelInferResponse(prediction, datatypes, wrapped);
}

const spec = (s: TensorSpec) => ({ name: s.name, datatype: TYPE_NAME[s.type], shape: s.dims.map(BigInt) });

function modelConfig(status: ModelStatus, registry: ModelRegistry, version: string): ModelConfig {
  const loaded = registry.resolve(status.name, version);
  const config = status.config!;
  const batching = loaded.signature.maxBatchSize > 0;
  const dims = (s: TensorSpec): bigint[] => (batching ? s.dims.slice(1) : s.dims).map(BigInt);
  const policy = config.versionPolicy;
  return {
    name: status.name,
    platform: "onnxruntime_onnx",
    backend: "onnxruntime",
    versionPolicy: {
      policyChoice:
        policy.kind === "latest"
          ? { $case: "latest", value: { numVersions: policy.count } }
          : policy.kind === "all"
            ? { $case: "all", value: {} }
            : { $case: "specific", value: { versions: policy.versions.map(BigInt) } },
    },
    maxBatchSize: loaded.signature.maxBatchSize,
    input: loaded.signature.inputs.map((s) => ({ name: s.name, dataType: CONFIG_TYPE[s.type], dims: dims(s) })),
    output: loaded.signature.outputs.map((s) => ({ name: s.name, dataType: CONFIG_TYPE[s.type], dims: dims(s) })),
    schedulingChoice: batching
      ? { $case: "dynamicBatching", value: { preferredBatchSize: [...config.preferredBatchSizes], maxQueueDelayMicroseconds: BigInt(config.maxQueueDelayUs) } }
      : undefined,
    instanceGroup: [
      {
        name: `${status.name}_0`,
        kind: loaded.provider === "cuda" ? ModelInstanceGroup_Kind.KIND_GPU : ModelInstanceGroup_Kind.KIND_CPU,
        count: config.instanceCount,
        gpus: loaded.provider === "cuda" ? [config.cudaDeviceId] : [],
      },
    ],
    defaultModelFilename: "model.onnx",
  };
}

const duration = (count: number, ms: number): StatisticDuration => ({ count: BigInt(count), ns: BigInt(Math.round(ms * 1e6)) });

function statistics(name: string, v: VersionStatus): ModelStatistics {
  const s = v.loaded!.batcher.stats;
  return {
    name,
    version: String(v.version),
    lastInference: BigInt(s.lastInferenceMs),
    inferenceCount: BigInt(s.rowCount),
    executionCount: BigInt(s.batchCount),
    inferenceStats: {
      success: duration(s.successCount, s.successMsTotal),
      fail: duration(s.failureCount, s.failureMsTotal),
      queue: duration(s.successCount, s.queueMsTotal),
      computeInput: duration(s.batchCount, s.computeInputMsTotal),
      computeInfer: duration(s.batchCount, s.computeMsTotal),
      computeOutput: duration(s.batchCount, s.computeOutputMsTotal),
    },
    batchStats: [],
  };
}

const STATE: Record<string, string> = { loading: "LOADING", ready: "READY", unavailable: "UNAVAILABLE", unloading: "UNLOADING", unloaded: "UNAVAILABLE", failed: "UNAVAILABLE" };

export function createInferenceProtocolService(deps: InferenceProtocolDeps): UntypedServiceImplementation {
  const scoped = (context: CallContext): ModelRegistry => deps.scopes.for(context.caller);
  return implement(inferenceProtocolDefinition, deps, {
    serverLive: { role: "predict", handle: async () => ({ live: true }) },
    serverReady: { role: "predict", handle: async (_r, context) => ({
      ready: deps.isServing() && scoped(context).list().every((m) => m.state !== "loading" && m.state !== "unavailable"),
    }) },
    modelReady: { role: "predict", handle: async (r, context) => ({ ready: scoped(context).ready(r.name, r.version) }) },
    serverMetadata: { role: "predict", handle: async () => ({
      name: deps.serverName,
      version: deps.serverVersion,
      extensions: ["model_repository", "model_configuration", "statistics"],
    }) },
    modelMetadata: { role: "predict", handle: async (r, context) => {
      const registry = scoped(context);
      const loaded = registry.resolve(r.name, r.version);
      const status = await registry.status(r.name);
      return {
        name: r.name,
        versions: status.versions.filter((v) => v.state === "ready").map((v) => String(v.version)),
        platform: "onnxruntime_onnx",
        inputs: loaded.signature.inputs.map(spec),
        outputs: loaded.signature.outputs.map(spec),
      };
    } },
    modelInfer: { role: "predict", handle: (r, context) => modelInfer(deps, r, context) },
    modelStreamInfer: { role: "predict", handle: (requests, context) => streamInfer(deps, requests, context) },
    modelConfig: { role: "predict", handle: async (r, context) => {
      const registry = scoped(context);
      const status = await registry.status(r.name);
      return { config: modelConfig(status, registry, r.version) };
    } },
    modelStatistics: { role: "predict", handle: async (r, context) => {
      const registry = scoped(context);
      const models = r.name ? [await registry.status(r.name)] : registry.list();
      const stats = models.flatMap((m) =>
        m.versions.filter((v) => v.loaded && (!r.version || String(v.version) === r.version)).map((v) => statistics(m.name, v)),
      );
      if (r.name && r.version && stats.length === 0) throw notFound(`version ${r.version} of model "${r.name}" is not loaded`);
      return { modelStats: stats };
    } },
    repositoryIndex: { role: "predict", handle: async (r, context) => {
      const models: RepositoryIndexResponse_ModelIndex[] = scoped(context).list().flatMap((m) =>
        m.versions.length
          ? m.versions.map((v) => ({ name: m.name, version: String(v.version), state: STATE[v.state], reason: v.reason }))
          : [{ name: m.name, version: "", state: STATE[m.state], reason: m.reason }],
      );
      return { models: r.ready ? models.filter((m) => m.state === "READY") : models };
    } },
    repositoryModelLoad: { role: "train", handle: async (r, context) => {
      const result = await scoped(context).load(r.modelName);
      // The model's own files keep it from loading: the caller can act on the reason, so it is not INTERNAL.
      if (result.state !== "ready") throw failedPrecondition(`model "${r.modelName}" failed to load: ${result.reason}`);
      return {};
    } },
    repositoryModelUnload: { role: "train", handle: async (r, context) => {
      await scoped(context).unload(r.modelName);
      return {};
    } },
  });
}

/** Streamed requests run concurrently; a failed one answers with error_message and the stream goes on. */
function streamInfer(deps: InferenceProtocolDeps, requests: AsyncIterable<ModelInferRequest>, context: CallContext): AsyncIterable<ModelStreamInferResponse | Buffer> {
  return concurrentResponses(
    requests,
    deps.maxStreamInflight,
    (request): Promise<ModelStreamInferResponse | Buffer> => modelInfer(deps, request, context, true),
    (request, error): ModelStreamInferResponse => {
      const e = publicError(error, deps.logger, "ModelStreamInfer");
      return {
        errorMessage: `${status[e.code]}: ${e.message}`,
        inferResponse: { modelName: request.modelName, modelVersion: request.modelVersion, id: request.id, parameters: {}, outputs: [], rawOutputContents: [] },
      };
    },
    { serverStopping: context.serverStopping, call: context.signal },
  );
}
