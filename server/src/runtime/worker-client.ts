import type { Worker } from "node:worker_threads";
import type { ProviderName } from "./execution-providers.js";
import { SessionGoneError } from "./session-gone.js";
import { spawnWorker } from "./spawn-worker.js";
import type { WorkerCall, WorkerMessage } from "./worker-protocol.js";

/** A call the worker failed; `returned` holds the buffers the call had transferred, for reuse. */
export class WorkerCallError extends Error {
  constructor(
    message: string,
    readonly returned: readonly ArrayBuffer[],
  ) {
    super(message);
    this.name = "WorkerCallError";
  }
}

/**
 * The main-thread side of a runtime worker: starts it, waits for its sessions to open, then carries calls
 * and replies by id. When the thread ends, every pending and later call fails with SessionGoneError.
 */
export class WorkerClient<Info> {
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private hasExited = false;
  private closing: Promise<void> | undefined;
  /** Resolves with the thread's exit code when it ends, whether closed, terminated or crashed. */
  readonly exited: Promise<number>;

  private constructor(
    private readonly worker: Worker,
    readonly provider: ProviderName,
    readonly fallbackReason: string | undefined,
    readonly info: Info,
  ) {
    worker.on("message", (message: WorkerMessage<Info>) => this.settle(message));
    worker.on("error", (error) => this.failAll(error));
    this.exited = new Promise<number>((resolve) =>
      worker.on("exit", (code) => {
        this.hasExited = true;
        this.failAll(new SessionGoneError(`the runtime worker exited with code ${code}`));
        resolve(code);
      }),
    );
  }

  /** Starts the worker module `name` beside `base` and waits until it is ready (or throws why it is not). */
  static async start<Info>(base: string, name: string, workerData: unknown): Promise<WorkerClient<Info>> {
    const worker = spawnWorker(base, name, workerData);
    const ready = await new Promise<Extract<WorkerMessage<Info>, { kind: "ready" }>>((resolve, reject) => {
      worker.once("message", (message: WorkerMessage<Info>) => {
        if (message.kind === "ready") resolve(message);
        else reject(new Error(message.kind === "failed" ? message.message : `unexpected first message ${message.kind}`));
      });
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the runtime worker exited with code ${code} while loading`)));
    }).catch(async (error: Error) => {
      await worker.terminate();
      throw error;
    });
    // Only these: the Worker keeps its own newListener/removeListener handlers, which start reading its port.
    for (const event of ["message", "error", "exit"]) worker.removeAllListeners(event);
    return new WorkerClient(worker, ready.provider, ready.fallbackReason, ready.info);
  }

  /** Calls a method of the worker; `transfer` moves those buffers to it. */
  call<T>(method: string, payload: unknown, transfer: readonly ArrayBuffer[] = []): Promise<T> {
    if (this.hasExited || this.closing) return Promise.reject(new SessionGoneError("the runtime worker is closed"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, method, payload } satisfies WorkerCall, [...transfer]);
    });
  }

  /** Releases the worker's sessions, then ends the thread (terminated if it does not answer in 10 s). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.hasExited) return;
      const id = this.nextId++;
      const closed = new Promise<void>((resolve) => {
        this.pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
        this.worker.once("exit", () => resolve());
      });
      this.worker.postMessage({ id, method: "close", payload: undefined } satisfies WorkerCall);
      const timer = setTimeout(() => void this.worker.terminate(), 10_000);
      await closed;
      clearTimeout(timer);
      await this.worker.terminate();
    })();
    return this.closing;
  }

  /**
   * Ends the thread at once, without releasing its sessions first (for a worker that is stuck in a run or
   * unresponsive): pending calls fail with SessionGoneError.
   */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private settle(message: WorkerMessage<Info>): void {
    if (message.kind !== "reply" && message.kind !== "error") return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.kind === "reply") pending.resolve(message.value);
    else pending.reject(new WorkerCallError(message.message, message.returned));
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}
