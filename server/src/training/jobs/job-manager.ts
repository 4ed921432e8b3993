import type { TrainSpec } from "@aiaas/sdk/gen";
import type { Logger } from "pino";
import type { ModelProto } from "onnx-buf";
import { Code, ServerError, invalidArgument, notFound } from "../../common/errors.js";
import { modelPath } from "../../repository/index.js";
import type { ProviderName } from "../../runtime/index.js";
import type { ModelRegistry } from "../../serving/index.js";
import { ArchitectureError, buildArchitecture } from "../layers/build-architecture.js";
import { readModelFile } from "../onnx/model-file.js";
import { Graph } from "../onnx/graph.js";
import { buildTrainProgram, type TrainProgram } from "../engine/train-program.js";
import { CheckpointStore } from "./checkpoint-store.js";
import { JobData, type DataSpec, type DecodedChunk } from "./job-data.js";
import { parseJobSpec, type JobSpec } from "./job-spec.js";
import { runJob } from "./run-job.js";
import { createMemoryJobStore, idempotencyScope, type JobStore } from "./job-store.js";
import { TrainJob } from "./train-job.js";

export interface JobManagerOptions {
  /** Where checkpoints are written (kept after a job ends, for resume_from). */
  readonly checkpointsDir: string;
  /** Jobs training at once; others wait QUEUED. */
  readonly maxConcurrentJobs: number;
  /** ORT intra-op threads of each job's training session. */
  readonly threads: number;
  readonly providers: readonly ProviderName[];
  /** Upper bound on one job's uploaded data. */
  readonly maxDataBytes: number;
  readonly logger: Logger;
  /** Where jobs are kept (default: in memory, the newest 1,000). */
  readonly store?: JobStore;
}

/** Who submits a job: the tenant that will own it, the models it reaches, and its own limits. */
export interface JobOwner {
  readonly tenant: string | undefined;
  /** The caller's view of the repository: base models resolve in it and the result is published into its root. */
  readonly registry: ModelRegistry;
  /** The tenant's cap on one job's data (the server's cap applies too). */
  readonly maxDataBytes?: number;
  /** Takes one of the tenant's concurrent-job slots (RESOURCE_EXHAUSTED when none is free); returns its release. */
  readonly enterJob?: () => () => void;
}

/**
 * Whose jobs a caller reaches: its own tenant's, or every tenant's for the platform operator (admin keys, and
 * every caller when authentication is off).
 */
export interface JobViewer {
  readonly tenant: string | undefined;
  readonly allTenants: boolean;
}

const sees = (viewer: JobViewer, job: TrainJob): boolean => viewer.allTenants || job.owner.tenant === viewer.tenant;

/** Training jobs: creation from a spec, data intake, a queue with a concurrency cap, lookup and cancel. */
export interface JobManager {
  /** Creates a job (or finds the one an idempotency key already created). Bad specs throw with their status. */
  submit(spec: TrainSpec, owner: JobOwner): Promise<{ job: TrainJob; attached: boolean }>;
  /** Checks and stores a chunk (`decode` turns the transport's message into tensors); a bad chunk fails the job and throws its status. */
  addData(job: TrainJob, decode: (label: string) => DecodedChunk): void;
  /** The data is complete: the job waits for a training slot. */
  endData(job: TrainJob): void;
  /** A job the caller may see; another tenant's job is NOT_FOUND, as a job that does not exist. */
  get(id: string, viewer: JobViewer): TrainJob;
  /** Newest first; `tenant` narrows an all-tenant viewer to one tenant. */
  list(viewer: JobViewer, tenant?: string): TrainJob[];
  cancel(id: string, viewer: JobViewer): TrainJob;
  close(): Promise<void>;
}


function dataSpec(program: TrainProgram, forward: ModelProto, spec: JobSpec): DataSpec {
  const inputs = program.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims.slice(1) }));
  const out = Graph.fromModel(forward).outputs.find((o) => o.name === spec.output)!;
  if (spec.task === "classification") {
    const classes = out.dims?.[1];
    if (out.dims?.length !== 2 || typeof classes !== "number") {
      throw invalidArgument(`output "${spec.output}" has shape [${out.dims?.join(", ") ?? "?"}]: classification needs [batch, classes] logits with a fixed class count`);
    }
    return { inputs, labels: { kind: "classes", classes } };
  }
  return { inputs, labels: { kind: "target", target: { name: "labels", type: out.type, dims: (out.dims ?? []).slice(1) } } };
}

/** The graph a job trains: built from its architecture, or read from the base model it names. */
async function forwardModel(spec: JobSpec, registry: ModelRegistry): Promise<ModelProto> {
  if (spec.source.kind === "architecture") {
    try {
      return buildArchitecture(spec.source.architecture, { seed: spec.seed, name: spec.model });
    } catch (error) {
      if (error instanceof ArchitectureError) throw invalidArgument(error.message);
      throw error;
    }
  }
  const loaded = registry.resolve(spec.source.name, spec.source.version);
  return readModelFile(modelPath(registry.root, loaded.model, loaded.version));
}

/** The train-step program of a job's graph: its loss, optimizer and frozen parameters. */
function trainProgramFor(spec: JobSpec, forward: ModelProto): TrainProgram {
  try {
    return buildTrainProgram(forward, {
      loss: { kind: spec.task === "classification" ? "cross-entropy" : "mse", output: spec.output },
      optimizer: spec.optimizer,
      freeze: spec.source.kind === "base" ? spec.source.freeze : [],
    });
  } catch (error) {
    const what = spec.source.kind === "base" ? `base model "${spec.source.name}"` : "the architecture";
    throw invalidArgument(`${what} cannot be trained: ${(error as Error).message}`);
  }
}

export function createJobManager(options: JobManagerOptions): JobManager {
  const { logger } = options;
  const jobs = options.store ?? createMemoryJobStore();
  const waiting: TrainJob[] = [];
  const running = new Set<Promise<void>>();
  const checkpoints = new CheckpointStore(options.checkpointsDir);
  let closed = false;

  const pump = (): void => {
    while (!closed && running.size < options.maxConcurrentJobs && waiting.length > 0) {
      const job = waiting.shift()!;
      if (job.terminal) continue;
      const run = runJob(job, { checkpoints, threads: options.threads, providers: options.providers, logger }).finally(() => {
        running.delete(run);
        pump();
      });
      running.add(run);
    }
  };



  return {
    async submit(wire, owner) {
      if (closed) throw new ServerError(Code.UNAVAILABLE, "the server is shutting down; submit the job to another replica");
      const spec = parseJobSpec(wire);
      const key = spec.idempotencyKey ? idempotencyScope(owner.tenant, spec.model, spec.idempotencyKey) : undefined;
      const existing = key ? jobs.byIdempotencyKey(key) : undefined;
      if (existing) return { job: existing, attached: true };
      // Resolved in the caller's tenant before any upload: another tenant's checkpoint is as a missing one.
      if (spec.resumeFrom) await checkpoints.check(owner.tenant, spec.resumeFrom.jobId, spec.resumeFrom.checkpointId);
      const forward = await forwardModel(spec, owner.registry);
      const outputs = forward.graph?.output.map((o) => o.name) ?? [];
      if (!outputs.includes(spec.output)) {
        throw invalidArgument(`the model has no output "${spec.output}" (its outputs: ${outputs.map((o) => `"${o}"`).join(", ")}); set spec.output`);
      }
      const program = trainProgramFor(spec, forward);
      const release = owner.enterJob?.() ?? (() => undefined);
      const maxBytes = Math.min(options.maxDataBytes, owner.maxDataBytes ?? Infinity);
      const job = new TrainJob(spec, forward, program, new JobData(dataSpec(program, forward, spec), maxBytes), {
        tenant: owner.tenant,
        registry: owner.registry,
        onEnd: release,
      });
      jobs.add(job, key);
      job.setState(job.state, `accepted; waiting for data (${program.params.length} parameter tensors to train${program.frozen.length ? `, ${program.frozen.length} frozen` : ""})`);
      logger.info({ job: job.id, model: spec.model }, `training job ${job.id} for ${spec.model} accepted`);
      return { job, attached: false };
    },
    addData(job, decode) {
      if (job.terminal) throw new ServerError(Code.FAILED_PRECONDITION, `job ${job.id} has ended; it takes no more data`);
      if (job.dataComplete) throw invalidArgument(`job ${job.id}: data arrived after the end marker`);
      try {
        job.data.add(decode);
      } catch (error) {
        const e = ServerError.from(error);
        job.fail(e.code, e.message);
        throw e;
      }
    },
    endData(job) {
      if (job.terminal || job.dataComplete) return;
      job.dataComplete = true;
      job.emit({
        $case: "data",
        value: { trainRows: BigInt(job.data.trainRows), validationRows: BigInt(job.data.validationRows), bytes: BigInt(job.data.bytes) },
      });
      waiting.push(job);
      if (running.size >= options.maxConcurrentJobs) job.setState(job.state, `data complete; waiting for a training slot (${running.size} running)`);
      pump();
    },
    get(id, viewer) {
      const job = jobs.get(id);
      if (!job || !sees(viewer, job)) throw notFound(`job "${id.slice(0, 80)}" not found`);
      return job;
    },
    list(viewer, tenant) {
      return [...jobs.all()]
        .filter((j) => sees(viewer, j) && (!tenant || (j.owner.tenant ?? "") === tenant))
        .sort((a, b) => b.created.getTime() - a.created.getTime());
    },
    cancel(id, viewer) {
      const job = this.get(id, viewer);
      job.cancel("cancelled by request");
      const i = waiting.indexOf(job);
      if (i >= 0) waiting.splice(i, 1);
      return job;
    },
    async close() {
      closed = true;
      for (const job of jobs.all()) job.cancel("the server shut down");
      await Promise.allSettled([...running]);
    },
  };
}
