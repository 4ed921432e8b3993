import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { failedPrecondition } from "./common/errors.js";
import type { Logger } from "pino";
import type { ModelScopes } from "./serving/index.js";
import { migrate, openEmbeddedDatabase, openPostgresDatabase, type Database } from "./state/index.js";
import { DataJournal, JobFeed, SqlJobJournal, type DurableJobs } from "./training/jobs/index.js";

/** What lives in the state folder: the database of jobs and events, uploaded training data, checkpoints. */
export interface ServerState {
  readonly db: Database;
  /** This process's name among the replicas sharing the database (host, pid and a random part). */
  readonly replica: string;
  readonly checkpointsDir: string;
  /** Durable jobs over this state, publishing into the scopes' registries. */
  durableJobs(scopes: ModelScopes): DurableJobs;
  close(): Promise<void>;
}

export interface StateOptions {
  /** A PostgreSQL server instead of the embedded database; replicas sharing it share the state folder too. */
  readonly databaseUrl?: string;
  /** How long a replica's lease on a job lasts without renewal (how soon a dead replica's jobs move). */
  readonly jobLeaseMs?: number;
  /** A database opened elsewhere (a process of `--processes N`: its primary's, over IPC), already migrated. */
  readonly database?: Database;
}

/** The state folder's database, opened and migrated; with its close (which unlocks the folder). */
export interface StateDatabase {
  readonly db: Database;
  close(): Promise<void>;
}

/**
 * Opens the state folder's database: the embedded one in `<dir>/db` (the folder locked to this process), or
 * the PostgreSQL server at `databaseUrl` (replicas share the folder then); migrated to the current schema.
 */
export async function openStateDatabase(dir: string, logger: Logger, databaseUrl?: string): Promise<StateDatabase> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const unlock = databaseUrl ? async () => undefined : await lockStateFolder(dir);
  const open = databaseUrl ? openPostgresDatabase(databaseUrl) : openEmbeddedDatabase(join(dir, "db"));
  const db = await open.catch(async (error: unknown) => {
    await unlock();
    throw error;
  });
  try {
    const ran = await migrate(db);
    logger.info({ state: dir, migrations: ran }, `state in ${dir} (${db.description})${ran.length ? `; schema migrated to version ${ran[ran.length - 1]}` : ""}`);
  } catch (error) {
    await db.close();
    await unlock();
    throw error;
  }
  return {
    db,
    close: async () => {
      await db.close();
      await unlock();
    },
  };
}

/**
 * Opens the state folder: its database (see openStateDatabase, or the one given), `<dir>/job-data` (uploads
 * of jobs that have not ended, 0600) and `<dir>/checkpoints`. With the embedded database the folder is this
 * process's alone (a lock file); with a PostgreSQL server, or in a pool of processes, it is shared (a volume
 * every replica mounts), since any of them may take a job up from its upload and checkpoints.
 */
export async function openServerState(dir: string, logger: Logger, options: StateOptions = {}): Promise<ServerState> {
  const { db, close } = options.database
    ? { db: options.database, close: () => options.database!.close() }
    : await openStateDatabase(dir, logger, options.databaseUrl);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const replica = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const journal = new SqlJobJournal(db, replica, options.jobLeaseMs);
  const data = new DataJournal(join(dir, "job-data"));
  const feed = new JobFeed(db);
  return {
    db,
    replica,
    checkpointsDir: join(dir, "checkpoints"),
    durableJobs: (scopes) => ({
      journal,
      data,
      db,
      feed,
      registryFor: (tenant) => (tenant === undefined ? scopes.public : scopes.for({ tenant, roles: new Set(["train"]) })),
    }),
    close: async () => {
      await feed.close();
      await close();
    },
  };
}

/**
 * One server per state folder: the embedded database must not be opened by two processes. The lock file holds
 * the owner's pid; one left by a process that no longer runs (a kill -9) is taken over.
 */
async function lockStateFolder(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, "server.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (owner && owner !== process.pid && isRunning(owner)) {
        throw failedPrecondition(`the state folder ${dir} is in use by process ${owner}: give each server its own --state-dir (or stop that one)`);
      }
      await rm(path, { force: true });
    }
  }
  throw failedPrecondition(`could not lock the state folder ${dir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
