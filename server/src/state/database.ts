/** Something that runs SQL: a database, or one transaction of it. Parameters are $1, $2, … as PostgreSQL takes them. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

/** Called with each NOTIFY payload on a channel; `undefined` after the connection was lost and came back (payloads may have been missed: read the state again). */
export type NotificationHandler = (payload: string | undefined) => void;

/**
 * The server's state database: PostgreSQL's SQL whether it is the embedded one (PGlite, PostgreSQL compiled
 * to WebAssembly, in the state folder) or a PostgreSQL server, so the same statements and migrations run on both.
 */
export interface Database extends Queryable {
  /** Runs `work` in one transaction: all of its writes or none. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a channel: `pg_notify(channel, payload)` committed by any process on this database reaches
   * `handler` (this process's own too). Returns the unsubscribe.
   */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>>;
  /**
   * Runs `work` holding the lock named `key` against every process on this database (a PostgreSQL advisory
   * lock; the embedded database has one process, so there it just runs).
   */
  exclusive<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** Whether other processes may share this database (a PostgreSQL server), so work must be coordinated through it. */
  readonly shared: boolean;
  /** Where it is, for the log (never credentials). */
  readonly description: string;
  close(): Promise<void>;
}
