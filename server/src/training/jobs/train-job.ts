import { randomUUID } from "node:crypto";
import type { ModelProto } from "onnx-buf";
import { JobState, type FinalMetrics, type Job, type JobFailed, type TrainEvent } from "@aiaas/sdk/gen";
import { onAbort } from "../../common/abort-listeners.js";
import { unavailable } from "../../common/errors.js";
import type { TrainProgram } from "../engine/train-program.js";
import type { ModelRegistry } from "../../serving/index.js";
import type { JobData } from "./job-data.js";
import type { JobSpec } from "./job-spec.js";

export type JobEvent = NonNullable<TrainEvent["event"]>;

const TERMINAL = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

/** Writes a job's new events (and its summary as of them) durably, in order, before watchers see them. */
export type JobJournalSink = (job: JobRecord, events: readonly TrainEvent[]) => Promise<void>;

/** What a job is known by, however it is kept: its id, owner, model and idempotency key. */
export interface JobIdentity {
  readonly id: string;
  readonly created: Date;
  /** The tenant that owns the job (undefined: the operator). */
  readonly tenant: string | undefined;
  readonly model: string;
  readonly idempotencyKey: string;
}

/**
 * A job's record: its state, progress, result and the log of every event it emitted, which any number of
 * watchers read from any point. With a journal, an event reaches watchers only once it is stored, so nothing a
 * client saw is lost in a crash. A job that ended before a restart is a record; a live one is a TrainJob.
 */
export class JobRecord {
  readonly id: string;
  readonly created: Date;
  updated: Date;
  state: JobState = JobState.JOB_STATE_QUEUED;
  step = 0;
  epoch = 0;
  totalSteps = 0;
  publishedVersion = "";
  metrics: FinalMetrics | undefined;
  error: JobFailed | undefined;
  /** Set once the client has sent all data (half-close or an end marker). */
  dataComplete = false;
  protected readonly events: TrainEvent[] = [];
  /** Events stored by the journal (all of them without one): what watchers may read. */
  private stored = 0;
  private writing: Promise<void> = Promise.resolve();
  private wake: (() => void)[] = [];
  private journal: JobJournalSink | undefined;
  private onJournalLost: ((error: unknown) => void) | undefined;
  /** Why the journal refused a write (the lease went to another replica, the database failed): nothing more is stored here. */
  private lostJournal: unknown;

  constructor(
    readonly identity: JobIdentity,
    readonly owner: { readonly tenant: string | undefined; readonly onEnd: () => void },
  ) {
    this.id = identity.id;
    this.created = identity.created;
    this.updated = identity.created;
  }

  /**
   * Events from now on are stored by `sink` before watchers see them. When a write fails, nothing later is
   * stored, watchers end with UNAVAILABLE and `onLost` decides what becomes of the run.
   */
  attachJournal(sink: JobJournalSink, onLost?: (error: unknown) => void): void {
    this.journal = sink;
    this.onJournalLost = onLost;
  }

  /** The failed write that stopped this job's journal, if one did. */
  get journalError(): unknown {
    return this.lostJournal;
  }

  get tenant(): string | undefined {
    return this.identity.tenant;
  }

  /** Resolves once every event emitted so far is stored. */
  flushed(): Promise<void> {
    return this.writing;
  }

  /** A stored history, as a restart finds it: its events are already durable. */
  restoreEvents(events: readonly TrainEvent[]): void {
    this.events.push(...events);
    this.stored = this.events.length;
  }

  /** A stored history of `count` events read only when a watcher first asks for it (an ended job's). */
  restoreEventsLazily(count: number, read: () => Promise<readonly TrainEvent[]>): void {
    this.stored = count;
    this.pendingHistory = read;
  }

  private pendingHistory: (() => Promise<readonly TrainEvent[]>) | undefined;
  private history: Promise<void> | undefined;

  private loadHistory(): Promise<void> {
    const read = this.pendingHistory;
    if (!read) return Promise.resolve();
    this.history ??= read().then((events) => {
      this.events.push(...events);
      this.stored = this.events.length;
      this.pendingHistory = undefined;
    });
    return this.history;
  }

  get terminal(): boolean {
    return TERMINAL.has(this.state);
  }

  get lastEventId(): number {
    return this.events.length;
  }

  emit(event: JobEvent): void {
    this.updated = new Date();
    const record: TrainEvent = { jobId: this.id, eventId: BigInt(this.events.length + 1), timeUnixMs: BigInt(this.updated.getTime()), event };
    this.events.push(record);
    if (!this.journal) return this.published(this.events.length);
    const journal = this.journal;
    const upTo = this.events.length;
    this.writing = this.writing.then(async () => {
      if (this.stored >= upTo || this.lostJournal !== undefined) return;
      try {
        await journal(this, this.events.slice(this.stored, upTo));
      } catch (error) {
        this.lostJournal = error ?? new Error("journal write failed");
        this.published(this.stored);
        this.onJournalLost?.(error);
        return;
      }
      this.published(upTo);
    });
  }

  private published(upTo: number): void {
    this.stored = Math.max(this.stored, upTo);
    const waiting = this.wake;
    this.wake = [];
    for (const w of waiting) w();
  }

  setState(state: JobState, message: string): void {
    if (this.terminal) return;
    this.state = state;
    this.emit({ $case: "state", value: { state, message } });
    if (this.terminal) {
      this.owner.onEnd();
      this.ended();
    }
  }

  /** What a live job releases when it ends (its data, its run). */
  protected ended(): void {}

  /** Ends the job as FAILED with a status code and a message the user can act on. */
  fail(code: number, message: string): void {
    if (this.terminal) return;
    this.error = { code, message };
    this.emit({ $case: "failed", value: this.error });
    this.setState(JobState.JOB_STATE_FAILED, message);
  }

  cancel(message: string): void {
    this.finishCancelled(message);
  }

  finishCancelled(message: string): void {
    this.setState(JobState.JOB_STATE_CANCELLED, message);
  }

  succeed(): void {
    this.setState(JobState.JOB_STATE_SUCCEEDED, `published ${this.identity.model} version ${this.publishedVersion}`);
  }

  /** Every stored event after `after`, then the live ones until the job ends or `signal` aborts. */
  async *watch(after: number, signal: AbortSignal): AsyncGenerator<TrainEvent> {
    await this.loadHistory();
    let next = Math.max(0, after);
    while (true) {
      while (next < this.stored) yield this.events[next++]!;
      if (this.lostJournal !== undefined) throw unavailable(`job ${this.id}: this server can no longer record the job's progress; watch it again with WatchJob`);
      if ((this.terminal && next >= this.events.length) || signal.aborted) return;
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
      model: this.identity.model,
      state: this.state,
      createdUnixMs: BigInt(this.created.getTime()),
      updatedUnixMs: BigInt(this.updated.getTime()),
      step: BigInt(this.step),
      epoch: this.epoch,
      totalSteps: BigInt(this.totalSteps),
      publishedVersion: this.publishedVersion,
      metrics: this.metrics,
      error: this.error,
      lastEventId: BigInt(this.stored),
      idempotencyKey: this.identity.idempotencyKey,
      tenant: this.identity.tenant ?? "",
    };
  }
}

/**
 * A job this server runs: its record plus its spec, graph, train program and data while it lives. Watchers do
 * not keep it alive and the job does not depend on them.
 */
export class TrainJob extends JobRecord {
  private readonly cancelController = new AbortController();
  private suspendedFlag = false;
  /** Set when a restart took the job up again: the run continues from its newest checkpoint. */
  restarted = false;

  constructor(
    readonly spec: JobSpec,
    readonly forward: ModelProto,
    readonly program: TrainProgram,
    readonly data: JobData,
    /** The tenant that owns the job (undefined: the operator), and the models its caller reaches and publishes into. */
    override readonly owner: { readonly tenant: string | undefined; readonly registry: ModelRegistry; readonly onEnd: () => void },
    identity?: Partial<JobIdentity>,
  ) {
    super(
      { id: identity?.id ?? randomUUID(), created: identity?.created ?? new Date(), tenant: owner.tenant, model: spec.model, idempotencyKey: spec.idempotencyKey },
      owner,
    );
  }

  /** Aborts when the job is cancelled (by CancelJob, a broken upload, or server shutdown). */
  get cancelSignal(): AbortSignal {
    return this.cancelController.signal;
  }

  /** Whether a shutdown stopped the run without ending the job (it resumes at the next start). */
  get suspended(): boolean {
    return this.suspendedFlag;
  }

  /** Stops the run without ending the job: a shutdown of a server whose jobs outlive it. */
  suspend(): void {
    if (this.terminal) return;
    this.suspendedFlag = true;
    this.cancelController.abort();
  }

  override cancel(message: string): void {
    if (this.terminal) return;
    this.cancelController.abort();
    // A running job notices at its next step and ends itself; one that is not running ends here.
    if (this.state !== JobState.JOB_STATE_RUNNING && this.state !== JobState.JOB_STATE_VALIDATING) this.finishCancelled(message);
  }

  protected override ended(): void {
    this.cancelController.abort();
    this.data.clear();
  }

}
