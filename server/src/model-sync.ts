import type { Logger } from "pino";
import type { ModelRegistry, ModelScopes } from "./serving/index.js";
import type { ModelAction, ModelChange, ModelChangeLog } from "./state/index.js";

/** Tells the other replicas what this one did to a model. */
export type ModelAnnouncer = (tenant: string | undefined, model: string, action: ModelAction) => void;

export interface ModelSync {
  readonly announce: ModelAnnouncer;
  close(): Promise<void>;
}

/**
 * Keeps this replica's models as the others change them (replicas sharing a PostgreSQL database and a model
 * repository): at start the models the log says were unloaded last are unloaded here too; afterwards each
 * change another replica announces is applied from the shared repository, in order (a load brings up the
 * versions on disk, a job's new one among them). What this replica does is announced through `announce`.
 */
export async function startModelSync(log: ModelChangeLog, scopes: ModelScopes, logger: Logger): Promise<ModelSync> {
  const registryOf = (tenant: string | undefined): ModelRegistry =>
    // The change was allowed where it was made; here it is applied as the operator would, in that tenant's view.
    tenant === undefined ? scopes.public : scopes.for({ tenant, roles: new Set(["admin"]) });
  const apply = async (change: Pick<ModelChange, "tenant" | "model" | "action">): Promise<void> => {
    const registry = registryOf(change.tenant);
    try {
      if (change.action === "unload") {
        if (registry.knows(change.model)) await registry.unload(change.model);
      } else await registry.load(change.model);
    } catch (error) {
      logger.warn({ err: error, model: change.model, tenant: change.tenant }, `could not apply another replica's ${change.action} of model ${change.model}`);
    }
  };

  const start = await log.latest();
  for (const change of start.changes) if (change.action === "unload") await apply(change);
  let seq = start.seq;
  let running: Promise<void> = Promise.resolve();
  let again = false;
  const catchUp = (): void => {
    if (again) return;
    again = true;
    running = running.then(async () => {
      again = false;
      const next = await log.after(seq);
      for (const change of next.changes) await apply(change);
      seq = next.seq;
    }).catch((error: unknown) => logger.warn({ err: error }, "could not read the model changes of other replicas"));
  };
  const unlisten = await log.listen(catchUp);
  catchUp(); // what was appended between reading the log and listening

  return {
    announce: (tenant, model, action) => {
      void log.append(tenant, model, action).catch((error: unknown) => logger.error({ err: error, model }, `could not announce the ${action} of model ${model} to the other replicas`));
    },
    async close() {
      await unlisten().catch(() => undefined);
      await running;
    },
  };
}
