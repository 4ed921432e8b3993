import { createAsyncQueue } from "@aiaas/sdk/internal";
import { onAbort } from "../abort-listeners.js";

const STOP = Symbol("stop");

/**
 * Runs each request of a stream as it arrives, up to `maxInflight` at once (then stops reading, which is
 * backpressure to the client), and yields the answers as they finish, in any order. A failed request
 * becomes the answer `failed` makes of it, so one bad request never ends the stream.
 */
export async function* concurrentResponses<Req, Res>(
  requests: AsyncIterable<Req>,
  maxInflight: number,
  run: (request: Req) => Promise<Res>,
  failed: (request: Req, error: unknown) => Res,
  stopReading: AbortSignal,
): AsyncGenerator<Res> {
  const out = createAsyncQueue<Res>();
  let inflight = 0;
  let reading = true;
  let slot: (() => void) | undefined;
  // A broken request stream (a malformed message) ends the responses with its error, after the answers
  // to the requests it delivered before.
  let broken: { error: unknown } | undefined;
  const end = (): void => (broken ? out.fail(broken.error) : out.close());
  const finishOne = (): void => {
    inflight--;
    slot?.();
    slot = undefined;
    if (!reading && inflight === 0) end();
  };
  void (async () => {
    // When the server starts shutting down, stop taking requests, answer the ones taken, and end the
    // stream: the client then sends the rest on a stream to another replica instead of waiting here.
    let unsubscribe = (): void => undefined;
    const stopped = new Promise<typeof STOP>((resolve) => {
      if (stopReading.aborted) resolve(STOP);
      else unsubscribe = onAbort(stopReading, () => resolve(STOP));
    });
    const iterator = requests[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), stopped]);
        if (next === STOP || next.done) break;
        const request = next.value;
        if (inflight >= maxInflight) await new Promise<void>((resolve) => (slot = resolve));
        inflight++;
        run(request)
          .then(
            (response) => out.push(response),
            (error) => out.push(failed(request, error)),
          )
          .finally(finishOne);
      }
    } catch (error) {
      broken = { error };
    }
    unsubscribe();
    reading = false;
    if (inflight === 0) end();
  })();
  yield* out;
}
