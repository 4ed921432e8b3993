/** Something that runs SQL: a database, or one transaction of it. Parameters are $1, $2, … as PostgreSQL takes them. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

/**
 * The server's state database: PostgreSQL's SQL whether it is the embedded one (PGlite, PostgreSQL compiled
 * to WebAssembly, in the state folder) or a PostgreSQL server, so the same statements and migrations run on both.
 */
export interface Database extends Queryable {
  /** Runs `work` in one transaction: all of its writes or none. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Where it is, for the log (never credentials). */
  readonly description: string;
  close(): Promise<void>;
}
