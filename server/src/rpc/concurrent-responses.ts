import { onAbort } from "../common/abort-listeners.js";

const STOP = Symbol("stop");

/** When a stream stops taking requests: the server's shutdown, and the call's own end. */
export interface StopSignals {
  /** Aborts when the server begins a graceful shutdown: answer what was taken, then end. */
  readonly serverStopping: AbortSignal;
  /** Aborts when the call ends (client cancel, reset, deadline): nothing more will be read or answered. */
  readonly call: AbortSignal;
}

/**
 * Runs each request of a stream as it arrives and yields the answers as they finish, in any order. A request
 * holds one of `maxInflight` slots from when it is read until its answer is taken by the consumer (the writer,
 * which stops taking while the client does not read), so running work plus unread answers stay bounded and
 * a client that sends without reading is pushed back by HTTP/2 flow control. A failed request becomes the
 * answer `failed` makes of it, so one bad request never ends the stream.
 */
export function concurrentResponses<Req, Res>(
  requests: AsyncIterable<Req>,
  maxInflight: number,
  run: (request: Req) => Promise<Res>,
  failed: (request: Req, error: unknown) => Res,
  stop: StopSignals,
): AsyncIterableIterator<Res> {
  let held = 0;
  let running = 0;
  let reading = true;
  let slot: (() => void) | undefined;
  // Each answer taken frees its request's slot.
  const out = new Answers<Res>(() => {
    held--;
    slot?.();
    slot = undefined;
  });
  // A broken request stream (a malformed message) ends the responses with its error, after the answers
  // to the requests it delivered before.
  let broken: { error: unknown } | undefined;
  const end = (): void => out.end(broken);
  // A run's answer: one function per stream, so a request that succeeds makes no closure of its own. The count
  // of running requests is kept even if `failed` throws.
  const answered = (response: Res): void => {
    out.push(response);
    ranOne();
  };
  const ranOne = (): void => {
    running--;
    if (!reading && running === 0) end();
  };
  const runOne = (request: Req): void => {
    run(request).then(answered, (error: unknown) => {
      try {
        out.push(failed(request, error));
      } finally {
        ranOne();
      }
    });
  };
  void (async () => {
    // When the server starts shutting down, stop taking requests, answer the ones taken, and end the
    // stream: the client then sends the rest on a stream to another replica instead of waiting here.
    const stopped = stopWaits([stop.serverStopping, stop.call]);
    const iterator = requests[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await stopped.race(iterator.next());
        if (next === STOP || next.done) break;
        const request = next.value;
        if (held >= maxInflight && (await stopped.race(new Promise<void>((resolve) => (slot = resolve)))) === STOP) break;
        held++;
        running++;
        runOne(request);
      }
    } catch (error) {
      broken = { error };
    }
    stopped.dispose();
    reading = false;
    if (running === 0) end();
  })();
  return out;
}

/**
 * Waits that a stop cuts short, one at a time. Promise.race against one long-lived "stopped" promise would
 * add a reaction to it per message, all kept until the stream ends (a stream of a million requests held a
 * million of them); here each wait holds only the one resolver a stop calls.
 */
function stopWaits(signals: readonly AbortSignal[]): { race<T>(promise: Promise<T>): Promise<T | typeof STOP>; dispose(): void } {
  let stopping = signals.some((signal) => signal.aborted);
  let wake: ((value: typeof STOP) => void) | undefined;
  const unsubscribe = signals.map((signal) =>
    onAbort(signal, () => {
      stopping = true;
      wake?.(STOP);
      wake = undefined;
    }),
  );
  return {
    race<T>(promise: Promise<T>): Promise<T | typeof STOP> {
      if (stopping) return Promise.resolve(STOP);
      return new Promise<T | typeof STOP>((resolve, reject) => {
        wake = resolve;
        promise.then(resolve, reject);
      });
    },
    dispose() {
      for (const u of unsubscribe) u();
    },
  };
}

/**
 * The answers of a stream in the order they finish, for its one reader: an array and one waiting reader, with
 * no promise per answer beyond the one `next()` returns while answers are ready (it-pushable's per-read
 * bookkeeping cost a third more server CPU per streamed request in `npm run bench:ab`, and an async generator
 * here and another around it cost two resumptions per answer). `onTake` runs as each answer is handed out. A
 * broken request stream ends it with an error after the answers before it.
 */
class Answers<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private ended: { readonly error?: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly onTake: () => void) {}

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.notify();
  }

  end(failure?: { readonly error: unknown }): void {
    this.ended ??= failure ?? {};
    this.notify();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const item = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      this.onTake();
      return Promise.resolve({ done: false, value: item });
    }
    const ended = this.ended;
    if (ended) {
      // The error once; the iterator is done after it.
      this.ended = {};
      return "error" in ended ? Promise.reject(ended.error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise<void>((resolve) => (this.wake = resolve)).then(() => this.next());
  }

  /** The reader stopped: later answers are dropped. */
  return(): Promise<IteratorResult<T>> {
    this.ended = {};
    this.items.length = this.head = 0;
    return Promise.resolve({ done: true, value: undefined });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
