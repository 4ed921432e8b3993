import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import {
  JobState,
  TrainingService,
  type TrainData,
  type TrainEvent,
  type TrainRequest,
} from "@aiaas/sdk/gen";
import { onAbort } from "../common/abort-listeners.js";
import { ServerError, invalidArgument } from "../common/errors.js";
import type { DecodedChunk, JobManager, JobRecord, JobView, JobViewer } from "../training/jobs/index.js";
import { decodeInputs, type DecodeLimits } from "./tensor-codec.js";
import type { Caller, QuotaCounters } from "../auth/index.js";
import type { ModelScopes } from "../serving/index.js";
import type { HandlerEnv } from "./handlers.js";
import { publicError } from "./error-mapping.js";
import { implement } from "./service-builder.js";

/** Admin keys (the platform operator) reach every tenant's jobs; other keys their own tenant's. */
const viewerOf = (caller: Caller): JobViewer => ({ tenant: caller.tenant, allTenants: caller.roles.has("admin") || caller.tenant === undefined });

/** Ends a Train call as its job ended: OK for SUCCEEDED, the job's status for FAILED, CANCELLED for CANCELLED. */
function endStatus(job: JobView): void {
  if (job.state === JobState.JOB_STATE_FAILED && job.error) throw new ServerError(job.error.code as status, job.error.message);
  if (job.state === JobState.JOB_STATE_CANCELLED) throw new ServerError(status.CANCELLED, `job ${job.id} was cancelled`);
}

/** A TrainData message as host tensors, with the same checks and messages as a Predict request's inputs. */
function decodeChunk(label: string, chunk: TrainData, limits: DecodeLimits): DecodedChunk {
  const inputs = decodeInputs(label, chunk.inputs, limits).tensors.map((t) => ({ name: t.name, tensor: t }));
  const labels = chunk.labels && decodeInputs(label, [{ ...chunk.labels, name: chunk.labels.name || "labels" }], limits).tensors[0];
  return { inputs, labels, validation: chunk.validation };
}

/** Reads the rest of a Train stream into the job: chunks, then the end marker or the half-close. */
async function upload(manager: JobManager, job: JobRecord, requests: AsyncIterator<TrainRequest>, limits: DecodeLimits): Promise<void> {
  let ended = false;
  for (;;) {
    const next = await requests.next();
    if (next.done) break;
    const message = next.value.message;
    if (ended) continue;
    switch (message?.$case) {
      case "data": {
        const chunk = message.value;
        manager.addData(job, (label) => decodeChunk(label, chunk, limits));
        break;
      }
      case "end":
        await manager.endData(job);
        ended = true;
        break;
      case "spec":
        throw invalidArgument("Train: a second TrainSpec arrived; one stream trains one job");
      default:
        throw invalidArgument("Train: a message with neither spec, data nor end arrived");
    }
  }
  await manager.endData(job);
}

/** A retry that attached to an existing job (idempotency key) re-sends data the job already has: read and ignored. */
async function drain(requests: AsyncIterator<TrainRequest>): Promise<void> {
  while (!(await requests.next()).done);
}

export function createTrainingService(
  manager: JobManager,
  scopes: ModelScopes,
  env: HandlerEnv & { quotas?: QuotaCounters; limits: DecodeLimits },
): UntypedServiceImplementation {
  return implement(TrainingService, env, {
    train: { role: "train", handle: async function* (requests, context): AsyncGenerator<TrainEvent> {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done) throw invalidArgument("Train: the stream ended before a TrainSpec; send the spec first, then TrainData chunks");
      if (first.value.message?.$case !== "spec") throw invalidArgument("Train: the first message must be a TrainSpec, then TrainData chunks");
      const caller = context.caller;
      const limits = env.quotas?.limitsOf(caller);
      const submitted = await manager.submit(first.value.message.value, {
        tenant: caller.tenant,
        registry: scopes.for(caller),
        maxDataBytes: caller.tenant ? limits?.maxTrainDataBytes : undefined,
        enterJob: env.quotas ? () => env.quotas!.enterJob(caller) : undefined,
        maxJobs: caller.tenant ? limits?.maxConcurrentJobs : undefined,
      });
      if (submitted.attached) {
        const view = manager.view(submitted.job);
        void drain(iterator).catch(() => undefined);
        yield* view.watch(0, context.signal);
        return endStatus(view);
      }
      const job = submitted.job;
      const view = manager.view(job);
      // Until its data is complete a job depends on this stream: a client that goes away cancels it.
      const unsubscribe = onAbort(context.signal, () => {
        if (!job.dataComplete) job.cancel("the client went away before sending all data");
      });
      // A shutdown cuts the upload off: the job ends now (ABORTED, its idempotency key freed) rather than
      // when the grace period cancels the stream, which could look like the end of the data.
      const unsubscribeStopping = onAbort(context.serverStopping, () => {
        if (!job.dataComplete) void manager.abortUpload(job, "the server is shutting down before the job's data was complete: send the job again (its idempotency key is free)");
      });
      const uploading = upload(manager, job, iterator, env.limits).catch((error: unknown) => {
        if (!job.terminal && !job.dataComplete) {
          const e = publicError(error, env.logger, "Train");
          if (context.signal.aborted) job.cancel("the client went away before sending all data");
          else job.fail(e.code, e.message);
        }
      });
      try {
        yield* view.watch(0, context.signal);
      } finally {
        unsubscribe();
        unsubscribeStopping();
        if (job.terminal) await uploading;
      }
      endStatus(view);
    } },
    watchJob: { role: "train", handle: async function* (request, context) {
      const job = await manager.get(request.jobId, viewerOf(context.caller));
      yield* job.watch(Number(request.afterEventId), context.signal);
    } },
    getJob: { role: "train", handle: async (request, context) => ({ job: (await manager.get(request.jobId, viewerOf(context.caller))).toWire() }) },
    listJobs: { role: "train", handle: async (request, context) => ({
      jobs: (await manager.list(viewerOf(context.caller), request.tenant || undefined)).map((j) => j.toWire()),
    }) },
    cancelJob: { role: "train", handle: async (request, context) => ({
      job: (await manager.cancel(request.jobId, viewerOf(context.caller))).toWire(),
    }) },
  });
}
