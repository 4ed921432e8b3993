// The operations port of `aiaas serve --processes N` crosses Node's cluster IPC: the primary asks a serving
// process and gets its answer back; a streamed answer (the console's server-sent events) comes as chunks,
// and the primary's "cancel" stops it when the HTTP client goes away.
import type { Worker } from "node:cluster";
import type { OperationsAnswer, OperationsRequest } from "./http/operations-routes.js";
import type { DatabaseReply } from "./state/index.js";

/** What a request keeps when it crosses the IPC (its AbortSignal does not: "cancel" takes its place). */
type WireRequest = Omit<OperationsRequest, "signal">;
type WireAnswer = Omit<OperationsAnswer, "stream"> & { readonly streaming?: boolean };

export type ToPrimary =
  | { readonly t: "listening"; readonly address: string }
  | { readonly t: "answer"; readonly id: number; readonly answer: WireAnswer }
  | { readonly t: "chunk"; readonly id: number; readonly data: string }
  | { readonly t: "chunk-end"; readonly id: number };
export type ToWorker = { readonly t: "ask"; readonly id: number; readonly request: WireRequest } | { readonly t: "cancel"; readonly id: number };

const ASK_TIMEOUT_MS = 5000;

/** Sends to a serving process; false when its channel is closed or the write fails (it is dying). */
export function sendTo(worker: Worker, message: ToWorker | DatabaseReply): Promise<boolean> {
  if (!worker.isConnected()) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      worker.send(message, undefined, (error) => resolve(!error));
    } catch {
      resolve(false);
    }
  });
}

export interface OperationsAsker {
  ask(worker: Worker, request: OperationsRequest): Promise<OperationsAnswer>;
  /** A message of a serving process about one of the asks. */
  received(message: ToPrimary): void;
  /** A process exited: what it was asked is answered 503 now rather than at the timeout, its streams end. */
  gone(worker: Worker): void;
}

const notRunning = (error: string): OperationsAnswer => ({ status: 503, headers: { "content-type": "application/json" }, body: JSON.stringify({ error }) });

/** A stream fed by chunk messages; its end (by the process, or by the reader) is reported once. */
class ChunkStream implements AsyncIterable<string> {
  private readonly chunks: string[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(private readonly stop: () => void) {}

  push(data: string): void {
    this.chunks.push(data);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    try {
      for (;;) {
        const next = this.chunks.shift();
        if (next !== undefined) yield next;
        else if (this.ended) return;
        else await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      if (!this.ended) this.stop();
    }
  }
}

/** The primary's side: asks serving processes, 503 when one does not answer within 5 s or dies. */
export function operationsAsker(): OperationsAsker {
  const pending = new Map<number, { readonly worker: Worker; readonly settle: (answer: OperationsAnswer) => void }>();
  const streams = new Map<number, { readonly worker: Worker; readonly stream: ChunkStream }>();
  let nextId = 1;
  const ask = (worker: Worker, request: OperationsRequest): Promise<OperationsAnswer> =>
    new Promise((resolve) => {
      const id = nextId++;
      const { signal, ...wire } = request;
      const settle = (answer: OperationsAnswer): void => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(answer);
      };
      const timer = setTimeout(() => settle(notRunning("a serving process did not answer")), ASK_TIMEOUT_MS);
      pending.set(id, { worker, settle });
      signal?.addEventListener("abort", () => void sendTo(worker, { t: "cancel", id }), { once: true });
      void sendTo(worker, { t: "ask", id, request: wire } satisfies ToWorker).then((sent) => sent || settle(notRunning("a serving process is not running")));
    });
  const answered = (id: number, answer: WireAnswer): void => {
    const asked = pending.get(id);
    if (!asked) return;
    const { streaming, ...rest } = answer;
    if (!streaming) return asked.settle(rest);
    const stream = new ChunkStream(() => {
      streams.delete(id);
      void sendTo(asked.worker, { t: "cancel", id });
    });
    streams.set(id, { worker: asked.worker, stream });
    asked.settle({ ...rest, stream });
  };
  return {
    ask,
    received(message) {
      if (message.t === "answer") answered(message.id, message.answer);
      else if (message.t === "chunk") streams.get(message.id)?.stream.push(message.data);
      else if (message.t === "chunk-end") {
        streams.get(message.id)?.stream.end();
        streams.delete(message.id);
      }
    },
    gone(worker) {
      for (const p of [...pending.values()]) if (p.worker === worker) p.settle(notRunning("a serving process is not running"));
      for (const [id, s] of [...streams]) {
        if (s.worker !== worker) continue;
        s.stream.end();
        streams.delete(id);
      }
    },
  };
}

/** A serving process's side: answers the primary's asks with `operations`, streaming what streams. */
export function answerOperations(operations: (request: OperationsRequest) => Promise<OperationsAnswer>, send: (message: ToPrimary) => void): (message: ToWorker) => void {
  const running = new Map<number, AbortController>();
  const stream = async (id: number, chunks: AsyncIterable<string>): Promise<void> => {
    try {
      for await (const data of chunks) send({ t: "chunk", id, data });
    } finally {
      running.delete(id);
      send({ t: "chunk-end", id });
    }
  };
  return (message) => {
    if (message.t === "cancel") return running.get(message.id)?.abort();
    const controller = new AbortController();
    running.set(message.id, controller);
    void operations({ ...message.request, signal: controller.signal }).then(
      ({ stream: chunks, ...answer }) => {
        send({ t: "answer", id: message.id, answer: chunks ? { ...answer, streaming: true } : answer });
        if (chunks) return stream(message.id, chunks);
        running.delete(message.id);
      },
      () => {
        running.delete(message.id);
        send({ t: "answer", id: message.id, answer: { status: 500, headers: {}, body: "" } });
      },
    );
  };
}
