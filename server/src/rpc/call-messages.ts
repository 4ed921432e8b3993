import { finished, type Readable } from "node:stream";

/**
 * A stream call's incoming messages as an AsyncIterable, read from the call with `read()`: one promise per
 * message. Node's own Readable iterator is an async generator, and the per-message check wrapped it in a
 * second one; each added a resumption and a promise per message. `check` runs on each message as it is handed
 * out (it may throw: the iteration then fails with that error); `atEnd` runs once when the call's readable side
 * has ended cleanly (it may throw too). The call is never destroyed here, so its responses can still be written
 * when the reader stops early or the requests end.
 */
export function callMessages<Req>(call: Readable, check: (message: unknown) => Req, atEnd: () => void): AsyncIterableIterator<Req> {
  return new CallMessages(call, check, atEnd);
}

class CallMessages<Req> implements AsyncIterableIterator<Req> {
  private waiter: (() => void) | undefined;
  /** Set once the readable side is over: `error` when it closed early or failed. */
  private over: { readonly error?: Error } | undefined;
  private done = false;
  private readonly wake = (): void => {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  };
  private readonly stopWatching: () => void;

  constructor(
    private readonly call: Readable,
    private readonly check: (message: unknown) => Req,
    private readonly atEnd: () => void,
  ) {
    call.on("readable", this.wake);
    // As Node's iterator does: "finished" tells a clean end from a premature close or an error.
    this.stopWatching = finished(call, { writable: false }, (error) => {
      this.over = error ? { error } : {};
      this.wake();
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Req>> {
    while (!this.done) {
      const message: unknown = this.call.read();
      if (message !== null) {
        try {
          return { done: false, value: this.check(message) };
        } catch (error) {
          this.finish();
          throw error;
        }
      }
      const over = this.over;
      if (over) {
        this.finish();
        if (over.error) throw over.error;
        this.atEnd();
        break;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    return { done: true, value: undefined };
  }

  return(): Promise<IteratorResult<Req>> {
    this.finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.call.removeListener("readable", this.wake);
    this.stopWatching();
  }
}
