export type { Database, Queryable } from "./database.js";
export { openEmbeddedDatabase } from "./embedded-database.js";
export { MIGRATIONS, migrate } from "./migrations.js";
export type { Migration } from "./migrations.js";
export { describePostgres, openPostgresDatabase } from "./postgres-database.js";
export { ModelChangeLog } from "./model-change-log.js";
export type { ModelAction, ModelChange } from "./model-change-log.js";
export { ReplicaHeartbeat } from "./replica-heartbeat.js";
