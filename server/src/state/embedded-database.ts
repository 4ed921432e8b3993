import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import type { Database, Queryable } from "./database.js";

/**
 * The embedded default: PGlite (PostgreSQL in WebAssembly, no service and no native build) with its files in
 * `dir`. One process opens it at a time. A commit is written to its files before the query returns, so a
 * kill -9 of the server keeps every acknowledged write (a power loss may not: the files are not fsynced).
 */
export async function openEmbeddedDatabase(dir: string): Promise<Database> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(dir);
  const queryable = (q: Pick<PGlite, "query">): Queryable => ({
    query: async <Row>(sql: string, params: readonly unknown[] = []) => (await q.query<Row>(sql, [...params])).rows,
  });
  return {
    ...queryable(db),
    description: `embedded PostgreSQL (PGlite) in ${dir}`,
    transaction: (work) => db.transaction((tx) => work(queryable(tx))),
    listen: async (channel, handler) => {
      const unlisten = await db.listen(channel, handler);
      return () => unlisten();
    },
    shared: false,
    exclusive: (_key, work) => work(),
    close: () => db.close(),
  };
}
