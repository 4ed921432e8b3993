import { createAsyncQueue } from "@aiaas/sdk/internal";

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
): AsyncGenerator<Res> {
  const out = createAsyncQueue<Res>();
  let inflight = 0;
  let reading = true;
  let slot: (() => void) | undefined;
  const finishOne = (): void => {
    inflight--;
    slot?.();
    slot = undefined;
    if (!reading && inflight === 0) out.close();
  };
  void (async () => {
    try {
      for await (const request of requests) {
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
      out.fail(error);
    }
    reading = false;
    if (inflight === 0) out.close();
  })();
  yield* out;
}
