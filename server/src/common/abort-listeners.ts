/**
 * Abort listeners in O(1): every request of a stream listens to the stream's one signal, and an
 * EventTarget's add/removeEventListener walk its whole listener list, which made each request cost O(n)
 * with n requests in flight (measured: 40% of the main thread at 1,000 in flight). One real listener per
 * signal fans out to a Set instead.
 */
const registry = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `listener` once when `signal` aborts; returns the function that unsubscribes it. */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  let listeners = registry.get(signal);
  if (!listeners) {
    const set = new Set<() => void>();
    listeners = set;
    registry.set(signal, set);
    signal.addEventListener(
      "abort",
      () => {
        registry.delete(signal);
        for (const fn of set) fn();
        set.clear();
      },
      { once: true },
    );
  }
  const entry = (): void => listener();
  listeners.add(entry);
  const set = listeners;
  return () => {
    set.delete(entry);
  };
}
