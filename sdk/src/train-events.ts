import { JobState, type FinalMetrics as WireFinalMetrics, type Job as WireJob, type TrainEvent as WireTrainEvent } from "./gen/aiaas/v1/training.js";

export type JobStateName = "queued" | "validating" | "running" | "succeeded" | "failed" | "cancelled";

const STATES: Record<number, JobStateName> = {
  [JobState.JOB_STATE_QUEUED]: "queued",
  [JobState.JOB_STATE_VALIDATING]: "validating",
  [JobState.JOB_STATE_RUNNING]: "running",
  [JobState.JOB_STATE_SUCCEEDED]: "succeeded",
  [JobState.JOB_STATE_FAILED]: "failed",
  [JobState.JOB_STATE_CANCELLED]: "cancelled",
};

export interface FinalMetrics {
  readonly steps: number;
  readonly epochs: number;
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  readonly validationLoss: number;
  readonly validationAccuracy: number;
  readonly validationRows: number;
  readonly seconds: number;
}

/** One event of a training job, as Train and WatchJob stream them. */
export type TrainEvent = { readonly jobId: string; readonly eventId: bigint; readonly time: Date } & (
  | { readonly type: "state"; readonly state: JobStateName; readonly message: string }
  | { readonly type: "data"; readonly trainRows: number; readonly validationRows: number; readonly bytes: number }
  | {
      readonly type: "metrics";
      readonly step: number;
      readonly totalSteps: number;
      readonly epoch: number;
      readonly trainLoss: number;
      readonly trainAccuracy: number;
      readonly learningRate: number;
      readonly examplesPerSecond: number;
      readonly etaSeconds: number;
    }
  | { readonly type: "validation"; readonly epoch: number; readonly step: number; readonly loss: number; readonly accuracy: number; readonly rows: number }
  | { readonly type: "checkpoint"; readonly checkpoint: string; readonly step: number; readonly epoch: number }
  | { readonly type: "completed"; readonly model: string; readonly version: string; readonly stopReason: string; readonly metrics: FinalMetrics }
  | { readonly type: "failed"; readonly code: number; readonly message: string }
  /**
   * The job's first event: what it trains. `shared`: parameters read in more than one place (their gradient
   * is summed over the uses); `notes`: what the server changed in the model to train it.
   */
  | {
      readonly type: "prepared";
      readonly trainedTensors: number;
      readonly trainedElements: number;
      readonly frozen: readonly string[];
      readonly shared: readonly { readonly parameter: string; readonly readAs: readonly string[]; readonly uses: number }[];
      readonly notes: readonly string[];
      readonly unreached: readonly string[];
    }
  /** The server restarted and took the job up again by itself, from `checkpoint` ("" when from the start). */
  | { readonly type: "resumed"; readonly fromStep: number; readonly checkpoint: string; readonly reason: string }
);

export interface JobInfo {
  readonly id: string;
  readonly model: string;
  readonly state: JobStateName;
  readonly created: Date;
  readonly updated: Date;
  readonly step: number;
  readonly totalSteps: number;
  readonly epoch: number;
  readonly publishedVersion: string;
  readonly metrics: FinalMetrics | undefined;
  readonly error: { readonly code: number; readonly message: string } | undefined;
  readonly lastEventId: bigint;
  /** The tenant that owns the job ("" for the operator's jobs when the server has no keys). */
  readonly tenant: string;
}

const metricsFrom = (m: WireFinalMetrics): FinalMetrics => ({ ...m, steps: Number(m.steps), validationRows: Number(m.validationRows) });

export function trainEventFromWire(e: WireTrainEvent): TrainEvent {
  const base = { jobId: e.jobId, eventId: e.eventId, time: new Date(Number(e.timeUnixMs)) };
  const ev = e.event;
  switch (ev?.$case) {
    case "state":
      return { ...base, type: "state", state: STATES[ev.value.state] ?? "queued", message: ev.value.message };
    case "data":
      return { ...base, type: "data", trainRows: Number(ev.value.trainRows), validationRows: Number(ev.value.validationRows), bytes: Number(ev.value.bytes) };
    case "metrics":
      return { ...base, type: "metrics", ...ev.value, step: Number(ev.value.step), totalSteps: Number(ev.value.totalSteps) };
    case "validation":
      return { ...base, type: "validation", ...ev.value, step: Number(ev.value.step), rows: Number(ev.value.rows) };
    case "checkpoint":
      return { ...base, type: "checkpoint", ...ev.value, step: Number(ev.value.step) };
    case "completed":
      return { ...base, type: "completed", model: ev.value.model, version: ev.value.version, stopReason: ev.value.stopReason, metrics: metricsFrom(ev.value.metrics!) };
    case "failed":
      return { ...base, type: "failed", code: ev.value.code, message: ev.value.message };
    case "prepared":
      return { ...base, type: "prepared", ...ev.value, trainedElements: Number(ev.value.trainedElements) };
    case "resumed":
      return { ...base, type: "resumed", fromStep: Number(ev.value.fromStep), checkpoint: ev.value.checkpoint, reason: ev.value.reason };
    default:
      return { ...base, type: "state", state: "queued", message: "" };
  }
}

export function jobFromWire(j: WireJob): JobInfo {
  return {
    id: j.id,
    model: j.model,
    state: STATES[j.state] ?? "queued",
    created: new Date(Number(j.createdUnixMs)),
    updated: new Date(Number(j.updatedUnixMs)),
    step: Number(j.step),
    totalSteps: Number(j.totalSteps),
    epoch: j.epoch,
    publishedVersion: j.publishedVersion,
    metrics: j.metrics && metricsFrom(j.metrics),
    error: j.error && { code: j.error.code, message: j.error.message },
    lastEventId: j.lastEventId,
    tenant: j.tenant,
  };
}
