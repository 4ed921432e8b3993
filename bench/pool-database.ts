// A PostgreSQL database of the bench's own on the local server (127.0.0.1:5432, or AIAAS_BENCH_PG_URL), for
// `--processes 2`, which shares state through one; undefined (with the reason printed) where none answers.
import { randomUUID } from "node:crypto";
import pg from "pg";

const ADMIN_URL = process.env.AIAAS_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function benchDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const name = `aiaas_bench_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (error) {
    process.stderr.write(`no PostgreSQL at ${new URL(ADMIN_URL).host} (${(error as Error).message}; set AIAAS_BENCH_PG_URL): the --processes 2 points are skipped\n`);
    return undefined;
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
