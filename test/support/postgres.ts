// A PostgreSQL database of the test's own on the local server (127.0.0.1:5432, or AIAAS_TEST_PG_URL), dropped
// afterwards; `skip` says why when no server answers, so those tests skip with the reason.
import { randomUUID } from "node:crypto";
import pg from "pg";

export const PG_ADMIN_URL = process.env.AIAAS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export const pgReachable = await (async () => {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
})();

export const pgSkip: string | false = pgReachable ? false : `no PostgreSQL at ${new URL(PG_ADMIN_URL).host} (set AIAAS_TEST_PG_URL): skipped`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates a database; returns its URL and the drop. */
export async function testDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `aiaas_test_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
