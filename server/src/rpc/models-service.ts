import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  ModelState,
  ModelsService,
  type Model,
  type WatchTrafficResponse,
  type TensorSpec as WireTensorSpec,
  type VersionStatistics,
} from "@aiaas/sdk/gen";
import type { BatchStats, TensorSpec } from "../batching/index.js";
import { DEFAULT_AUTO_BATCH_SIZE, checkModelName } from "../repository/index.js";
import type { ModelScopes, ModelStateName, ModelStatus } from "../serving/index.js";
import type { TrafficMonitor, TrafficSampleData } from "../telemetry/traffic-monitor.js";
import type { Caller } from "../auth/index.js";
import type { CallContext } from "./call-context.js";
import type { HandlerEnv } from "./handlers.js";
import { implement } from "./service-builder.js";
import { toDataType } from "./tensor-codec.js";

const STATE: Record<ModelStateName, ModelState> = {
  loading: ModelState.MODEL_STATE_LOADING,
  ready: ModelState.MODEL_STATE_READY,
  unavailable: ModelState.MODEL_STATE_UNAVAILABLE,
  unloading: ModelState.MODEL_STATE_UNLOADING,
  unloaded: ModelState.MODEL_STATE_UNLOADED,
  failed: ModelState.MODEL_STATE_FAILED,
};

const spec = (s: TensorSpec): WireTensorSpec => ({ name: s.name, datatype: toDataType(s.type), shape: s.dims.map(BigInt) });

const statistics = (s: Readonly<BatchStats>): VersionStatistics => ({
  successCount: BigInt(s.successCount),
  failureCount: BigInt(s.failureCount),
  batchCount: BigInt(s.batchCount),
  inferenceCount: BigInt(s.rowCount),
  queueTimeUs: BigInt(Math.round(s.queueMsTotal * 1000)),
  computeTimeUs: BigInt(Math.round(s.computeMsTotal * 1000)),
  inlineBatchCount: BigInt(s.inlineBatchCount),
});

export function toWireModel(status: ModelStatus): Model {
  const config = status.config;
  const serving = status.versions.find((v) => v.loaded)?.loaded;
  return {
    name: status.name,
    platform: "onnxruntime",
    state: STATE[status.state],
    reason: status.reason,
    versions: status.versions.map((v) => ({
      version: String(v.version),
      state: STATE[v.state],
      reason: v.reason,
      inputs: v.loaded?.signature.inputs.map(spec) ?? [],
      outputs: v.loaded?.signature.outputs.map(spec) ?? [],
      statistics: v.loaded && statistics(v.loaded.batcher.stats),
    })),
    batching: config && {
      maxBatchSize: serving?.signature.maxBatchSize ?? config.maxBatchSize ?? DEFAULT_AUTO_BATCH_SIZE,
      maxQueueDelayUs: BigInt(config.maxQueueDelayUs),
      preferredBatchSizes: [...config.preferredBatchSizes],
      maxQueueSize: config.maxQueueSize,
      defaultTimeoutMs: BigInt(config.defaultTimeoutMs),
    },
    instanceCount: config?.instanceCount ?? 0,
    providers: serving ? [serving.provider] : [...(config?.providers ?? [])],
  };
}

/** Tells other replicas sharing the repository what a LoadModel or UnloadModel did here (they do it too). */
export type ModelControlAnnouncer = (tenant: string | undefined, model: string, action: "load" | "unload") => void;

/**
 * A sample as `caller` may see it: an admin (or the operator) every model's, a tenant only its own models'
 * (a public model's traffic is every tenant's calls together, so it is not one tenant's to read).
 */
function visibleSample(sample: TrafficSampleData, caller: Caller, model: string): WatchTrafficResponse {
  const all = caller.tenant === undefined || caller.roles.has("admin");
  return {
    timeUnixMs: BigInt(sample.timeUnixMs),
    intervalSeconds: sample.intervalSeconds,
    versions: sample.versions
      .filter((v) => (all || v.tenant === caller.tenant) && (!model || v.model === model))
      .map((v) => ({ ...v, errorsByCode: Object.fromEntries(Object.entries(v.errorsByCode).map(([code, n]) => [code, BigInt(n)])) })),
  };
}

/** The kept samples, then each new one, until the call ends. */
async function* watchTraffic(monitor: TrafficMonitor, request: { model: string; liveOnly: boolean }, context: CallContext): AsyncGenerator<WatchTrafficResponse> {
  const queue: TrafficSampleData[] = request.liveOnly ? [] : [...monitor.history()];
  let wake: (() => void) | undefined;
  const unsubscribe = monitor.subscribe((sample) => {
    queue.push(sample);
    wake?.();
  });
  const onEnd = (): void => wake?.();
  context.signal.addEventListener("abort", onEnd);
  context.serverStopping.addEventListener("abort", onEnd);
  try {
    while (!context.signal.aborted && !context.serverStopping.aborted) {
      const next = queue.shift();
      if (next) yield visibleSample(next, context.caller, request.model);
      else await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    unsubscribe();
    context.signal.removeEventListener("abort", onEnd);
    context.serverStopping.removeEventListener("abort", onEnd);
  }
}

export function createModelsService(scopes: ModelScopes, env: HandlerEnv, traffic: () => TrafficMonitor, announce?: ModelControlAnnouncer): UntypedServiceImplementation {
  const control = async (action: "load" | "unload", name: string, caller: { tenant: string | undefined; roles: ReadonlySet<string> }): Promise<Model> => {
    const model = toWireModel(await scopes.for(caller)[action](checkModelName(name)));
    announce?.(caller.tenant, name, action);
    return model;
  };
  return implement(ModelsService, env, {
    listModels: { role: "predict", handle: async (_r, context) => ({ models: scopes.for(context.caller).list().map(toWireModel) }) },
    getModel: { role: "predict", handle: async (request, context) => ({
      model: toWireModel(await scopes.for(context.caller).status(checkModelName(request.name))),
    }) },
    loadModel: { role: "train", handle: async (request, context) => ({ model: await control("load", request.name, context.caller) }) },
    unloadModel: { role: "train", handle: async (request, context) => ({ model: await control("unload", request.name, context.caller) }) },
    watchTraffic: { role: "predict", handle: (request, context) => watchTraffic(traffic(), request, context) },
  });
}
