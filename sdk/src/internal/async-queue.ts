/**
 * A push-driven AsyncIterable: producers push values (or fail it), one consumer iterates. It is how
 * completions that arrive out of order (a stream's requests finishing in different batches) become a
 * stream a handler can `yield*`.
 */
export interface AsyncQueue<T> extends AsyncIterable<T> {
  push(value: T): void;
  close(): void;
  fail(error: unknown): void;
}

export function createAsyncQueue<T>(): AsyncQueue<T> {
  const values: T[] = [];
  let head = 0;
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  return {
    push(value) {
      if (closed) return;
      values.push(value);
      notify();
    },
    close() {
      closed = true;
      notify();
    },
    fail(error) {
      failure ??= { error };
      closed = true;
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (head < values.length) {
          const value = values[head];
          values[head++] = undefined as T;
          if (head > 1024 && head * 2 > values.length) {
            values.splice(0, head);
            head = 0;
          }
          yield value;
        }
        if (failure) throw failure.error;
        if (closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
