import type { Database } from "./database.js";

/** One schema change; `version` orders them and is recorded once it has run. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: readonly string[];
}

/**
 * The schema, as versioned changes. Never edit one that has shipped: add the next. Plain PostgreSQL, so the
 * embedded database and a PostgreSQL server run the same statements.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "training jobs and their events",
    sql: [
      `CREATE TABLE jobs (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        model text NOT NULL,
        idempotency_key text,
        state integer NOT NULL,
        spec bytea NOT NULL,
        base_version text NOT NULL DEFAULT '',
        data_complete boolean NOT NULL DEFAULT false,
        created_ms bigint NOT NULL,
        updated_ms bigint NOT NULL,
        summary bytea NOT NULL
      )`,
      `CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, model, idempotency_key) WHERE idempotency_key IS NOT NULL`,
      `CREATE INDEX jobs_open ON jobs (state)`,
      `CREATE TABLE job_events (
        job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        event_id bigint NOT NULL,
        time_ms bigint NOT NULL,
        event bytea NOT NULL,
        PRIMARY KEY (job_id, event_id)
      )`,
    ],
  },
  {
    version: 2,
    description: "job leases: which replica runs a job, until when, and cancel requests from other replicas",
    sql: [
      `ALTER TABLE jobs ADD COLUMN owner text, ADD COLUMN lease_until_ms bigint NOT NULL DEFAULT 0, ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false`,
    ],
  },
  {
    version: 3,
    description: "API keys and tenant limits, for replicas that share the database",
    sql: [
      `CREATE TABLE api_keys (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        roles text[] NOT NULL,
        name text NOT NULL DEFAULT '',
        created_ms bigint NOT NULL,
        expires_ms bigint,
        revoked_ms bigint,
        limits jsonb,
        hash text NOT NULL
      )`,
      `CREATE INDEX api_keys_tenant ON api_keys (tenant)`,
      `CREATE TABLE tenant_limits (tenant text PRIMARY KEY, limits jsonb NOT NULL)`,
    ],
  },
  {
    version: 4,
    description: "model control announced to every replica: loads, unloads and published versions",
    sql: [
      `CREATE TABLE model_changes (
        seq bigserial PRIMARY KEY,
        tenant text NOT NULL,
        model text NOT NULL,
        action text NOT NULL,
        replica text NOT NULL,
        at_ms bigint NOT NULL
      )`,
      `CREATE INDEX model_changes_model ON model_changes (tenant, model, seq)`,
    ],
  },
  {
    version: 5,
    description: "cluster-wide quotas: each tenant's request bucket, and the replicas alive (their share of in-flight limits)",
    sql: [
      `CREATE TABLE rate_buckets (tenant text PRIMARY KEY, tokens float8 NOT NULL, updated_ms bigint NOT NULL)`,
      `CREATE TABLE replicas (id text PRIMARY KEY, started_ms bigint NOT NULL, heartbeat_ms bigint NOT NULL)`,
    ],
  },
  {
    version: 6,
    description: "the audit trail (admin actions and denied calls) of every replica",
    sql: [
      `CREATE TABLE audit_events (
        seq bigserial PRIMARY KEY,
        at_ms bigint NOT NULL,
        replica text NOT NULL,
        action text NOT NULL,
        outcome text NOT NULL,
        key_id text,
        tenant text,
        peer text,
        target text,
        reason text
      )`,
      `CREATE INDEX audit_events_tenant ON audit_events (tenant, at_ms)`,
    ],
  },
];

/** The advisory lock migrations hold (an arbitrary constant of this project). */
const MIGRATION_LOCK = 0x61696161;

/** Brings the schema up to date at start: each missing migration in its own transaction, in order. Returns those run. */
export async function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_ms bigint NOT NULL)`);
  });
  const ran: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const applied = await db.transaction(async (tx) => {
      // Replicas starting together on one PostgreSQL: one runs each migration, the others see it done.
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      if ((await tx.query(`SELECT 1 FROM schema_migrations WHERE version = $1`, [m.version])).length > 0) return false;
      for (const statement of m.sql) await tx.query(statement);
      await tx.query(`INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)`, [m.version, m.description, Date.now()]);
      return true;
    });
    if (applied) ran.push(m.version);
  }
  return ran;
}
