import pg from "pg";
import { unavailable } from "../common/errors.js";
import type { Database, Queryable } from "./database.js";
import { PostgresListener } from "./postgres-listener.js";

/** Where a connection string points, without its credentials (for the log). */
export function describePostgres(url: string): string {
  try {
    const u = new URL(url);
    return `PostgreSQL at ${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`;
  } catch {
    return "PostgreSQL (connection string not shown)";
  }
}

/**
 * A PostgreSQL server as the state database (`--database-url postgres://…`): the same statements and
 * migrations as the embedded one, over a small connection pool. A transaction holds one connection.
 */
export async function openPostgresDatabase(url: string): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 5000, keepAlive: true });
  // An idle connection that breaks (a restarted server) must not crash the process: the pool replaces it.
  pool.on("error", () => undefined);
  const on = (client: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <Row>(sql: string, params: readonly unknown[] = []) => (await client.query(sql, [...params])).rows as Row[],
  });
  try {
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw unavailable(`cannot reach ${describePostgres(url)} (--database-url): ${(error as Error).message}`);
  }
  const listener = new PostgresListener(url);
  return {
    ...on(pool),
    description: describePostgres(url),
    shared: true,
    listen: (channel, handler) => listener.listen(channel, handler),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await work(on(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async exclusive(key, work) {
      const client = await pool.connect();
      try {
        await client.query(`SELECT pg_advisory_lock(hashtext($1))`, [key]);
        try {
          return await work();
        } finally {
          await client.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => undefined);
        }
      } finally {
        client.release();
      }
    },
    close: async () => {
      await listener.close();
      await pool.end();
    },
  };
}
