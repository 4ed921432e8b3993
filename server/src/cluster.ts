import type { Logger } from "pino";
import { SharedRate, type ClusterQuotas } from "./auth/index.js";
import { startModelSync, type ModelSync } from "./model-sync.js";
import type { ServerState } from "./server-state.js";
import type { ModelScopes } from "./serving/index.js";
import { ModelChangeLog, ReplicaHeartbeat } from "./state/index.js";

/** What makes replicas that share a PostgreSQL database one service, beyond jobs and keys. */
export interface Cluster {
  /** The tenants' rates across replicas, and this replica's share of their calls in flight. */
  readonly quotas: ClusterQuotas;
  /** Model control every replica applies. */
  readonly models: ModelSync;
  close(): Promise<void>;
}

/** Joins the replicas on the state's database (undefined when it is the embedded one: one process, nothing to share). */
export async function joinCluster(state: ServerState | undefined, scopes: ModelScopes, logger: Logger): Promise<Cluster | undefined> {
  if (!state?.db.shared) return undefined;
  const heartbeat = await ReplicaHeartbeat.start(state.db, state.replica);
  const models = await startModelSync(new ModelChangeLog(state.db, state.replica), scopes, logger).catch(async (error: unknown) => {
    await heartbeat.stop();
    throw error;
  });
  logger.info({ replica: state.replica, replicas: heartbeat.count() }, `replica ${state.replica} joined ${heartbeat.count()} replica(s) on ${state.db.description}`);
  return {
    quotas: { rate: new SharedRate(state.db, logger), replicas: () => heartbeat.count() },
    models,
    async close() {
      await models.close();
      await heartbeat.stop();
    },
  };
}
