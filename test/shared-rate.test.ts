// A tenant's rate drawn from one bucket in the state database (embedded PostgreSQL here), as replicas share it:
// two "replicas" (two SharedRate instances) together admit the rate, not twice it; and with the database
// unreachable each goes on admitting on its own instead of refusing every call.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { SharedRate } from "../server/src/auth/index.js";
import { migrate, openEmbeddedDatabase, type Database } from "../server/src/state/index.js";

const limit = { requestsPerSecond: 200, burst: 20 };

/** Calls `take` every millisecond for `ms`; returns how many were admitted. */
async function drive(rates: SharedRate[], ms: number): Promise<number> {
  let admitted = 0;
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    try {
      rates[i % rates.length]!.take("acme", limit);
      admitted++;
    } catch (error) {
      assert.equal((error as { code?: number }).code, 8, "over the rate is RESOURCE_EXHAUSTED");
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return admitted;
}

test("two replicas drawing on one bucket admit the tenant's rate in total", async () => {
  const dir = await mkdtemp(join(tmpdir(), "aiaas-rate-"));
  const db = await openEmbeddedDatabase(join(dir, "db"));
  try {
    await migrate(db);
    const rates = [new SharedRate(db), new SharedRate(db)];
    const start = Date.now();
    const admitted = await drive(rates, 1500);
    const allowed = limit.burst + (limit.requestsPerSecond * (Date.now() - start)) / 1000;
    assert.ok(admitted > 0.85 * allowed && admitted < 1.15 * allowed, `admitted ${admitted}, the limit allows ${allowed.toFixed(0)}`);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("with the database unreachable a replica keeps admitting (up to the rate on its own)", async () => {
  const down = { query: () => Promise.reject(new Error("connect ECONNREFUSED")) } as unknown as Database;
  const rate = new SharedRate(down, pino({ level: "silent" }));
  const admitted = await drive([rate], 500);
  assert.ok(admitted > 40, `admitted ${admitted} in 500 ms without the database`);
});
