import type { Logger } from "pino";
import type { BatchExecutor } from "../batching/index.js";
import { unavailable } from "../common/errors.js";
import { SessionGoneError, type RunResult, type SessionInstance, type TransferTensor } from "../runtime/index.js";

/** When a session that keeps dying is given up: `crashLimit` deaths within `crashWindowMs`. */
export interface SupervisionPolicy {
  /** A run longer than this recycles the worker (0: never). */
  readonly maxRunMs: number;
  readonly crashLimit: number;
  readonly crashWindowMs: number;
  /** The first replacement starts after this; each death in the window doubles it, up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

/** The server-wide part of the policy (max_run_ms is per model, in its config.json). */
export type SessionSupervision = Omit<SupervisionPolicy, "maxRunMs">;

export const DEFAULT_SUPERVISION: SessionSupervision = { crashLimit: 5, crashWindowMs: 60_000, backoffMs: 50, maxBackoffMs: 5_000 };

export type SupervisedState = "live" | "restarting" | "failed" | "closed";

/**
 * One session slot of a model version that heals: when its worker thread dies (a native crash, an exit, out
 * of memory) or a run outlives `maxRunMs`, a replacement starts with backoff, and runs given to the slot
 * meanwhile wait for it. The run that was in the dead worker fails with SessionGoneError (the batcher runs it
 * once more: a prediction is safe to repeat). A slot that dies `crashLimit` times within `crashWindowMs` gives
 * up: it is failed, and so are the runs waiting on it.
 */
export class SupervisedSession implements BatchExecutor {
  private current: SessionInstance | undefined;
  private replacement: Promise<SessionInstance> | undefined;
  private deaths: number[] = [];
  private stateName: SupervisedState = "live";
  private failure = "";
  private restarts = 0;

  constructor(
    first: SessionInstance,
    private readonly start: () => Promise<SessionInstance>,
    private readonly policy: SupervisionPolicy,
    private readonly label: string,
    private readonly logger: Logger,
  ) {
    this.adopt(first);
  }

  get state(): SupervisedState {
    return this.stateName;
  }

  /** Why the slot is not live, for GetModel and the readiness endpoints. */
  get reason(): string {
    return this.failure;
  }

  /** Replacements started so far. */
  get restartCount(): number {
    return this.restarts;
  }

  /** The live session, for fault injection in tests; undefined while it is being replaced. */
  get session(): SessionInstance | undefined {
    return this.current;
  }

  async run(feeds: readonly TransferTensor[], outputs: readonly string[]): Promise<RunResult> {
    const session = this.current ?? (await this.awaitReplacement());
    if (this.policy.maxRunMs <= 0) return session.run(feeds, outputs);
    const timer = setTimeout(() => this.recycle(session, `a run took longer than max_run_ms (${this.policy.maxRunMs} ms)`), this.policy.maxRunMs);
    try {
      return await session.run(feeds, outputs);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.stateName = "closed";
    const session = this.current ?? (await this.replacement?.catch(() => undefined));
    this.current = undefined;
    await session?.close();
  }

  private isClosed(): boolean {
    return this.stateName === "closed";
  }

  private async awaitReplacement(): Promise<SessionInstance> {
    if (this.stateName === "failed") throw unavailable(`${this.label} failed: ${this.failure}`);
    if (this.stateName === "closed" || !this.replacement) throw new SessionGoneError(`${this.label}: the session is closed`);
    return this.replacement;
  }

  private adopt(session: SessionInstance): void {
    this.current = session;
    void session.exited.then((code) => {
      if (this.current === session && this.stateName === "live") this.died(`its worker thread exited with code ${code}`);
    });
  }

  /** A stuck run: end the thread; its exit brings the replacement. */
  private recycle(session: SessionInstance, why: string): void {
    if (this.current !== session) return;
    this.logger.warn({ model: this.label }, `${this.label}: ${why}; replacing the session`);
    this.died(why);
    void session.terminate();
  }

  private died(why: string): void {
    this.current = undefined;
    const now = performance.now();
    this.deaths = [...this.deaths.filter((t) => now - t < this.policy.crashWindowMs), now];
    if (this.deaths.length >= this.policy.crashLimit) {
      this.stateName = "failed";
      this.failure = `its session died ${this.deaths.length} times within ${this.policy.crashWindowMs / 1000} s (last: ${why}); reload the model once it is fixed`;
      this.logger.error({ model: this.label }, `${this.label} failed: ${this.failure}`);
      this.replacement = Promise.reject(unavailable(`${this.label} failed: ${this.failure}`));
      this.replacement.catch(() => undefined);
      return;
    }
    this.stateName = "restarting";
    this.failure = `replacing a session that died (${why})`;
    this.logger.warn({ model: this.label }, `${this.label}: ${this.failure}`);
    const delay = Math.min(this.policy.maxBackoffMs, this.policy.backoffMs * 2 ** (this.deaths.length - 1));
    this.replacement = this.restart(delay);
    this.replacement.catch(() => undefined);
  }

  /** Starts replacements until one loads (each failure to load counts as a death) or the slot gives up. */
  private async restart(delayMs: number): Promise<SessionInstance> {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (this.isClosed()) throw new SessionGoneError(`${this.label}: the session is closed`);
    this.restarts++;
    let session: SessionInstance;
    try {
      session = await this.start();
    } catch (error) {
      this.died(`the replacement did not load: ${(error as Error).message.split("\n")[0]}`);
      return this.awaitReplacement();
    }
    if (this.isClosed()) {
      await session.close();
      throw new SessionGoneError(`${this.label}: the session is closed`);
    }
    this.stateName = "live";
    this.failure = "";
    this.adopt(session);
    this.logger.info({ model: this.label }, `${this.label}: a replacement session is serving`);
    return session;
  }
}
