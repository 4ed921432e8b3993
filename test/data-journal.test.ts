// A job's uploaded data on disk: private to the server's user, one folder per tenant, read back exactly as
// accepted, and gone once removed.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DataJournal } from "../server/src/training/jobs/index.js";

describe("the data journal", () => {
  it("keeps chunks 0600 in a 0700 folder per tenant, reads them back in order, and removes them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-data-"));
    try {
      const journal = new DataJournal(dir);
      const writer = journal.writer("acme", "job-1");
      const x = new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer);
      const ids = new Uint8Array(BigInt64Array.of(3n, 1n).buffer);
      writer.append({ inputs: [{ name: "x", tensor: { type: "float32", dims: [2, 2], data: x } }], labels: { type: "int64", dims: [2], data: ids }, validation: false });
      writer.append({ inputs: [{ name: "x", tensor: { type: "float32", dims: [1, 2], data: x.subarray(0, 8) } }], labels: { type: "int64", dims: [1], data: ids.subarray(0, 8) }, validation: true });
      await writer.finish();
      const file = join(dir, "acme", "job-1.chunks");
      assert.equal((await stat(file)).mode & 0o777, 0o600, "readable by the server's user only");
      assert.equal((await stat(join(dir, "acme"))).mode & 0o777, 0o700);
      const chunks = await journal.read("acme", "job-1");
      assert.equal(chunks.length, 2);
      assert.deepEqual(chunks.map((c) => c.validation), [false, true]);
      assert.deepEqual(Array.from(new Float32Array(chunks[0]!.inputs[0]!.tensor.data.buffer)), [1, 2, 3, 4]);
      assert.deepEqual(chunks[1]!.labels!.dims, [1]);
      assert.deepEqual(Array.from(new BigInt64Array(chunks[0]!.labels!.data.buffer)), [3n, 1n]);
      await assert.rejects(journal.read("other", "job-1"), /ENOENT/, "another tenant's name finds nothing");
      await journal.remove("acme", "job-1");
      assert.deepEqual(await readdir(join(dir, "acme")), []);
      const abandoned = journal.writer(undefined, "job-2");
      abandoned.append({ inputs: [], labels: { type: "int64", dims: [1], data: ids.subarray(0, 8) }, validation: false });
      await abandoned.abandon();
      await journal.remove(undefined, "job-2");
      assert.deepEqual(await readdir(join(dir, "_")), [], "an abandoned upload leaves nothing behind");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
