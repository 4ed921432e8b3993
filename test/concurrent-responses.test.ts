// The stream engine of PredictStream and ModelStreamInfer, on its own: answers as runs finish, a stop cuts
// a waiting read short, and a long stream holds no memory per message it has answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { concurrentResponses } from "../server/dist/rpc/concurrent-responses.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Requests 0..n-1, then a pause that only `release` ends. */
function requestsThenPause(n: number): { requests: AsyncIterable<number>; release: () => void } {
  let release = (): void => undefined;
  const paused = new Promise<void>((resolve) => (release = resolve));
  return {
    requests: (async function* () {
      for (let i = 0; i < n; i++) yield i;
      await paused;
    })(),
    release: () => release(),
  };
}

test("a long stream keeps no memory per answered message while it stays open", async () => {
  const never = new AbortController();
  const n = 200_000;
  const { requests, release } = requestsThenPause(n);
  const answers = concurrentResponses(requests, 64, async (x: number) => x * 2, () => -1, { serverStopping: never.signal, call: never.signal });
  let sum = 0;
  let count = 0;
  let baseline = 0;
  for await (const answer of answers) {
    sum += answer;
    count++;
    if (count === 1_000) {
      gc();
      baseline = process.memoryUsage().heapUsed;
    }
    if (count === n) break;
  }
  gc();
  const grown = process.memoryUsage().heapUsed - baseline;
  release();
  assert.equal(sum, n * (n - 1));
  // One promise reaction kept per message (what racing a long-lived promise does) would be ~20 MB here.
  assert.ok(grown < 4 << 20, `the heap grew ${(grown / 2 ** 20).toFixed(1)} MB over ${n} messages of one open stream`);
});

test("a stop ends the responses while the request stream is waiting, after the answers already taken", async () => {
  const stopping = new AbortController();
  const never = new AbortController();
  const { requests, release } = requestsThenPause(3);
  const seen: number[] = [];
  const answers = concurrentResponses(requests, 8, async (x: number) => x + 1, () => -1, { serverStopping: stopping.signal, call: never.signal });
  setTimeout(() => stopping.abort(), 50);
  for await (const answer of answers) seen.push(answer);
  release();
  assert.deepEqual(seen.sort(), [1, 2, 3]);
});

test("a failed run answers through `failed` and the stream goes on", async () => {
  const never = new AbortController();
  const answers = concurrentResponses(
    (async function* () {
      yield* [1, 2, 3, 4];
    })(),
    2,
    async (x: number) => {
      if (x % 2 === 0) throw new Error(`bad ${x}`);
      return `ok ${x}`;
    },
    (x, error) => `failed ${x}: ${(error as Error).message}`,
    { serverStopping: never.signal, call: never.signal },
  );
  const seen: string[] = [];
  for await (const answer of answers) seen.push(answer);
  assert.deepEqual(seen.sort(), ["failed 2: bad 2", "failed 4: bad 4", "ok 1", "ok 3"]);
});
