import { randomUUID } from "node:crypto";
import type { ModelProto } from "onnx-buf";
import { JobState, type FinalMetrics, type Job, type JobFailed, type TrainEvent } from "@aiaas/sdk/gen";
import { onAbort } from "../../common/abort-listeners.js";
import type { TrainProgram } from "../engine/train-program.js";
import type { ModelRegistry } from "../../serving/index.js";
import type { JobData } from "./job-data.js";
import type { JobSpec } from "./job-spec.js";

export type JobEvent = NonNullable<TrainEvent["event"]>;

const TERMINAL = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

/**
 * One training job: its spec, its data while it lives, its state, and the log of every event it emitted, which
 * any number of watchers read from any point. Watchers of a job do not keep it alive and the job does not
 * depend on them.
 */
export class TrainJob {
  readonly id = randomUUID();
  readonly created = new Date();
  updated = new Date();
  state: JobState = JobState.JOB_STATE_QUEUED;
  step = 0;
  epoch = 0;
  totalSteps = 0;
  publishedVersion = "";
  metrics: FinalMetrics | undefined;
  error: JobFailed | undefined;
  /** Set once the client has sent all data (half-close or an end marker). */
  dataComplete = false;
  private readonly events: TrainEvent[] = [];
  private wake: (() => void)[] = [];
  private readonly cancelController = new AbortController();

  constructor(
    readonly spec: JobSpec,
    readonly forward: ModelProto,
    readonly program: TrainProgram,
    readonly data: JobData,
    /** The tenant that owns the job (undefined: the operator), and the models its caller reaches and publishes into. */
    readonly owner: { readonly tenant: string | undefined; readonly registry: ModelRegistry; readonly onEnd: () => void },
  ) {}

  /** Aborts when the job is cancelled (by CancelJob, a broken upload, or server shutdown). */
  get cancelSignal(): AbortSignal {
    return this.cancelController.signal;
  }

  get terminal(): boolean {
    return TERMINAL.has(this.state);
  }

  get lastEventId(): number {
    return this.events.length;
  }

  emit(event: JobEvent): void {
    this.updated = new Date();
    this.events.push({ jobId: this.id, eventId: BigInt(this.events.length + 1), timeUnixMs: BigInt(this.updated.getTime()), event });
    const waiting = this.wake;
    this.wake = [];
    for (const w of waiting) w();
  }

  setState(state: JobState, message: string): void {
    if (this.terminal) return;
    this.state = state;
    this.emit({ $case: "state", value: { state, message } });
    if (this.terminal) this.owner.onEnd();
  }

  /** Ends the job as FAILED with a status code and a message the user can act on. */
  fail(code: number, message: string): void {
    if (this.terminal) return;
    this.error = { code, message };
    this.emit({ $case: "failed", value: this.error });
    this.setState(JobState.JOB_STATE_FAILED, message);
    this.cancelController.abort();
    this.data.clear();
  }

  cancel(message: string): void {
    if (this.terminal) return;
    this.cancelController.abort();
    // A running job notices at its next step and ends itself; one that is not running ends here.
    if (this.state !== JobState.JOB_STATE_RUNNING && this.state !== JobState.JOB_STATE_VALIDATING) this.finishCancelled(message);
  }

  finishCancelled(message: string): void {
    if (this.terminal) return;
    this.setState(JobState.JOB_STATE_CANCELLED, message);
    this.data.clear();
  }

  succeed(): void {
    this.setState(JobState.JOB_STATE_SUCCEEDED, `published ${this.spec.model} version ${this.publishedVersion}`);
    this.data.clear();
  }

  /** Every event after `after`, then the live ones until the job ends or `signal` aborts. */
  async *watch(after: number, signal: AbortSignal): AsyncGenerator<TrainEvent> {
    let next = Math.max(0, after);
    while (true) {
      while (next < this.events.length) yield this.events[next++]!;
      if (this.terminal || signal.aborted) return;
      await new Promise<void>((resolve) => {
        const unsubscribe = onAbort(signal, () => resolve());
        this.wake.push(() => {
          unsubscribe();
          resolve();
        });
      });
    }
  }

  toWire(): Job {
    return {
      id: this.id,
      model: this.spec.model,
      state: this.state,
      createdUnixMs: BigInt(this.created.getTime()),
      updatedUnixMs: BigInt(this.updated.getTime()),
      step: BigInt(this.step),
      epoch: this.epoch,
      totalSteps: BigInt(this.totalSteps),
      publishedVersion: this.publishedVersion,
      metrics: this.metrics,
      error: this.error,
      lastEventId: BigInt(this.events.length),
      idempotencyKey: this.spec.idempotencyKey,
      tenant: this.owner.tenant ?? "",
    };
  }
}
