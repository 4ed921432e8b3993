// The reader of a stream call's messages (every bidirectional RPC's requests), on real Node streams: it reads
// only what is asked for, so an unread stream pushes back; a failed check, a premature close and a failing
// end check each end the iteration with their error; stopping early leaves the stream open and unwatched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex, PassThrough } from "node:stream";
import { callMessages } from "../server/dist/rpc/call-messages.js";

const objects = (): PassThrough => new PassThrough({ objectMode: true, highWaterMark: 4 });

test("hands out every message in order, then ends once the writer ends, running the end check once", async () => {
  const call = objects();
  let ends = 0;
  const seen: number[] = [];
  const messages = callMessages(call, (m) => (m as { n: number }).n, () => ends++);
  const reading = (async () => {
    for await (const n of messages) seen.push(n);
  })();
  for (let n = 0; n < 50; n++) {
    if (!call.write({ n })) await new Promise((resolve) => call.once("drain", resolve));
  }
  call.end();
  await reading;
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, n) => n));
  assert.equal(ends, 1);
});

test("reads only when asked: a writer facing a reader that waits is pushed back", async () => {
  const call = objects();
  const messages = callMessages(call, (m) => m, () => undefined);
  const first = await Promise.all([messages.next(), call.write(1)]);
  assert.deepEqual(first[0], { done: false, value: 1 });
  // Nothing asks for more: the stream's buffer fills to its high-water mark and the writer is told to wait.
  let accepted = 0;
  while (accepted < 100 && call.write(accepted + 2)) accepted++;
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(call.writableNeedDrain, "the writer is pushed back");
  assert.ok(accepted < 16, `the reader took ${accepted} messages nobody asked for`);
  assert.deepEqual(await messages.next(), { done: false, value: 2 });
});

test("a message its check refuses ends the iteration with the check's error, and nothing after it is read", async () => {
  const call = objects();
  const messages = callMessages(
    call,
    (m) => {
      if (m === "bad") throw new Error("not a valid message");
      return m as string;
    },
    () => undefined,
  );
  call.write("good");
  call.write("bad");
  call.write("later");
  assert.deepEqual(await messages.next(), { done: false, value: "good" });
  await assert.rejects(messages.next(), /not a valid message/);
  assert.deepEqual(await messages.next(), { done: true, value: undefined });
  assert.equal(call.listenerCount("readable"), 0, "the reader stopped watching the stream");
  assert.equal(call.readableLength, 1, "the message after the refused one stays unread");
});

test("a failing end check (a half-close mid-message) ends the iteration with its error", async () => {
  const call = objects();
  const messages = callMessages(call, (m) => m, () => {
    throw new Error("half-closed in the middle of a message");
  });
  call.end("last");
  assert.deepEqual(await messages.next(), { done: false, value: "last" });
  await assert.rejects(messages.next(), /half-closed/);
});

test("a stream destroyed before it ended ends the iteration with an error, not a clean end", async () => {
  const call = objects();
  const messages = callMessages(call, (m) => m, () => assert.fail("a premature close is not a clean end"));
  const pending = messages.next();
  call.destroy();
  await assert.rejects(pending, (error: NodeJS.ErrnoException) => error.code === "ERR_STREAM_PREMATURE_CLOSE");
});

test("stopping early leaves the call open for its responses and stops watching it", async () => {
  const written: unknown[] = [];
  const call = new Duplex({
    objectMode: true,
    read() {},
    write(chunk, _encoding, done) {
      written.push(chunk);
      done();
    },
  });
  call.push("request");
  const messages = callMessages(call, (m) => m, () => undefined);
  for await (const message of messages) {
    assert.equal(message, "request");
    break;
  }
  assert.equal(call.destroyed, false);
  assert.equal(call.listenerCount("readable"), 0);
  call.write("response");
  assert.deepEqual(written, ["response"]);
});
