import type { Logger } from "pino";
import { createBatcher, type Batcher, type ModelSignature, type TensorSpec } from "../batching/index.js";
import { createSessionInstance, isTensorType, type InlineSession, type ProviderName, type SessionInstance, type SessionWorkerInit, type ValueSpec } from "../runtime/index.js";
import { openInlineLane } from "./inline-lane-setup.js";
import { instruments } from "../telemetry/instruments.js";
import { DEFAULT_AUTO_BATCH_SIZE, type ModelConfig } from "../repository/index.js";
import { DEFAULT_SUPERVISION, SupervisedSession, type SessionSupervision } from "./session-supervisor.js";

/** Whether a version can run requests now: some session live, all being replaced, or given up. */
export interface VersionHealth {
  readonly state: "ready" | "unavailable" | "failed";
  readonly reason: string;
}

/** One model version that serves: its sessions (one worker thread each), signature and batcher. */
export interface LoadedVersion {
  readonly model: string;
  readonly version: number;
  /** `version` as the replies carry it, made once. */
  readonly versionText: string;
  readonly label: string;
  readonly signature: ModelSignature;
  readonly config: ModelConfig;
  readonly provider: ProviderName;
  readonly batcher: Batcher;
  /** Its session slots, each replaced when its worker dies. */
  readonly sessions: readonly SupervisedSession[];
  /** READY while a session is live; UNAVAILABLE while every one is being replaced; FAILED once one gave up. */
  health(): VersionHealth;
  /** Telemetry attributes of this version (tenant, model, version), made once. */
  readonly attributes: Readonly<Record<string, string>>;
  /** The signature's output names in order, made once (a reply of every output). */
  readonly outputNames: readonly string[];
  /** Waits for every accepted request to finish, then releases the sessions. */
  close(): Promise<void>;
}

export async function loadVersion(
  model: string,
  version: number,
  path: string,
  config: ModelConfig,
  logger: Logger,
  tenant?: string,
  supervision: SessionSupervision = DEFAULT_SUPERVISION,
): Promise<LoadedVersion> {
  const label = `${model}:${version}`;
  const init: SessionWorkerInit = {
    modelPath: path,
    providers: config.providers,
    cudaDeviceId: config.cudaDeviceId,
    intraOpThreads: config.threads,
    graphOptimizationLevel: config.graphOptimizationLevel,
    allowSpinning: false,
    warmup: config.warmup,
  };
  const settled = await Promise.allSettled(Array.from({ length: config.instanceCount }, () => createSessionInstance(init)));
  const instances = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failure = settled.find((s) => s.status === "rejected");
  let inlineSession: InlineSession | undefined;
  try {
    if (failure) throw (failure as PromiseRejectedResult).reason;
    const first = instances[0];
    if (first.fallbackReason) {
      logger.warn({ model: label, provider: first.provider }, `execution provider fallback for ${label}: ${first.fallbackReason}; running on ${first.provider.toUpperCase()}`);
    }
    const api = first.nativeRun ? "onnxruntime-node's native binding" : "onnxruntime-node's public API";
    logger.info({ model: label, provider: first.provider, instances: instances.length, threads: config.threads, nativeRun: first.nativeRun }, `${label} runs on ${first.provider.toUpperCase()} through ${api}`);
    const signature = buildSignature(first, config);
    // The tenant label keeps two tenants' models of one name apart (public models: ""). Who may read the
    // labels at all is the operations port's business (/metrics needs a token when tenants exist).
    const attributes = { tenant: tenant ?? "", model, version: String(version) };
    const policy = { ...supervision, maxRunMs: config.maxRunMs };
    // The replacement keeps the provider the version loaded on, so a healed session serves as the first did.
    const restart = (): Promise<SessionInstance> => createSessionInstance({ ...init, providers: [first.provider] });
    const sessions = instances.map((instance) => new SupervisedSession(instance, restart, policy, label, logger));
    const outputNames = signature.outputs.map((o) => o.name);
    const inline = await openInlineLane(path, init, first.provider, signature, config, label, logger);
    inlineSession = inline?.session;
    const batcher = createBatcher(
      {
        label,
        maxBatchSize: signature.maxBatchSize,
        maxQueueDelayUs: config.maxQueueDelayUs,
        preferredBatchSizes: config.preferredBatchSizes,
        maxQueueSize: config.maxQueueSize,
        inputs: signature.inputs,
        outputNames,
        inline: inline?.lane,
        onBatch: (rows, _requests, runMs) => {
          instruments.batchSize.record(rows, attributes);
          instruments.runTime.record(runMs, attributes);
        },
      },
      sessions,
    );
    let closing: Promise<void> | undefined;
    return {
      model,
      version,
      versionText: String(version),
      label,
      signature,
      config,
      provider: first.provider,
      batcher,
      sessions,
      health: () => healthOf(sessions),
      attributes,
      outputNames,
      close() {
        closing ??= batcher.drain().then(async () => {
          await Promise.all([...sessions.map((s) => s.close()), inlineSession?.close()]);
        });
        return closing;
      },
    };
  } catch (error) {
    await Promise.all([...instances.map((i) => i.close()), inlineSession?.close()]);
    throw error;
  }
}

function healthOf(sessions: readonly SupervisedSession[]): VersionHealth {
  const failed = sessions.find((s) => s.state === "failed");
  if (failed) return { state: "failed", reason: failed.reason };
  if (sessions.some((s) => s.state === "live")) return { state: "ready", reason: "" };
  return { state: "unavailable", reason: sessions[0]?.reason || "no session is live" };
}

function toSpec(value: ValueSpec, where: string): TensorSpec {
  if (!value.isTensor || !isTensorType(value.type)) {
    throw new Error(`${where} "${value.name}" is of type ${value.type}, which aiaas cannot serve (tensors of numbers and booleans only)`);
  }
  return { name: value.name, type: value.type, dims: value.dims };
}

/** The served signature: the session's metadata, the batching decision and any narrowed input shapes. */
export function buildSignature(session: SessionInstance, config: ModelConfig): ModelSignature {
  let inputs = session.inputs.map((v) => toSpec(v, "input"));
  const outputs = session.outputs.map((v) => toSpec(v, "output"));
  const all = [...inputs, ...outputs];
  const batchable = all.every((spec) => spec.dims.length > 0 && spec.dims[0] === -1);
  const maxBatchSize = config.maxBatchSize ?? (batchable ? DEFAULT_AUTO_BATCH_SIZE : 0);
  if (maxBatchSize > 0 && !batchable) {
    const fixed = all.find((spec) => !(spec.dims.length > 0 && spec.dims[0] === -1))!;
    throw new Error(`max_batch_size is ${maxBatchSize} but "${fixed.name}" has shape [${fixed.dims.join(", ")}] without a variable first dimension; set max_batch_size to 0`);
  }
  for (const name of Object.keys(config.inputShapes)) {
    if (!inputs.some((i) => i.name === name)) throw new Error(`config.json narrows input "${name}", which the model does not have`);
  }
  inputs = inputs.map((spec) => {
    const narrowed = config.inputShapes[spec.name];
    if (!narrowed) return spec;
    const fits = narrowed.length === spec.dims.length && narrowed.every((d, i) => spec.dims[i] === -1 || spec.dims[i] === d);
    if (!fits || (maxBatchSize > 0 && narrowed[0] !== -1)) {
      throw new Error(`config.json: shape [${narrowed.join(", ")}] for input "${spec.name}" does not narrow the model's [${spec.dims.join(", ")}]${maxBatchSize > 0 ? " (keep -1 as the batch dimension)" : ""}`);
    }
    return { ...spec, dims: narrowed };
  });
  return { inputs, outputs, maxBatchSize };
}
