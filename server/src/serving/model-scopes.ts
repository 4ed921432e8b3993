import type { SessionSupervision } from "./session-supervisor.js";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { notFound, permissionDenied } from "../common/errors.js";
import { createModelRegistry, type ModelRegistry } from "./model-registry.js";
import type { ServingDefaults } from "../repository/index.js";
import { checkModelName } from "../repository/index.js";

/** Who asks, as far as scopes care (the auth part's Caller is one). */
export interface ScopeCaller {
  readonly tenant: string | undefined;
  readonly roles: ReadonlySet<string>;
}

/**
 * Which models a caller reaches. The public scope is the repository as the serving core lays it out,
 * readable by every caller and writable by admins; each tenant's scope is `<tenant root>/<tenant>/<model>/…`,
 * reached only by that tenant's keys. Another tenant's model answers exactly as a model that does not exist.
 */
export interface ModelScopes {
  readonly public: ModelRegistry;
  /** The caller's view: its own models first, then the public ones. The operator (no tenant) sees the public scope. */
  for(caller: ScopeCaller): ModelRegistry;
  /** Every registry (public and per tenant), for shutdown and readiness. */
  all(): ModelRegistry[];
  close(): Promise<void>;
}

export async function createModelScopes(options: {
  publicRoot: string;
  tenantRoot: string | undefined;
  defaults: ServingDefaults;
  /** How sessions that die are replaced, and when a version gives up. */
  supervision?: SessionSupervision;
  /** Whether other replicas share the repository (and publish into it). */
  shared?: boolean;
  logger: Logger;
}): Promise<ModelScopes> {
  const { defaults, logger } = options;
  const pub = createModelRegistry(options.publicRoot, defaults, logger, undefined, options.supervision, options.shared);
  await pub.loadAll();
  const tenants = new Map<string, ModelRegistry>();
  const views = new Map<string, ModelRegistry>();
  const tenantRegistry = (tenant: string): ModelRegistry => {
    let registry = tenants.get(tenant);
    if (!registry) {
      registry = createModelRegistry(join(options.tenantRoot!, tenant), defaults, logger.child({ tenant }), tenant, options.supervision, options.shared);
      tenants.set(tenant, registry);
    }
    return registry;
  };
  if (options.tenantRoot) {
    await mkdir(options.tenantRoot, { recursive: true, mode: 0o700 });
    for (const entry of await readdir(options.tenantRoot, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
      await tenantRegistry(entry.name).loadAll();
    }
  }

  const view = (caller: ScopeCaller): ModelRegistry => {
    const tenant = caller.tenant!;
    const own = tenantRegistry(tenant);
    const admin = caller.roles.has("admin");
    const writePublic = (name: string, action: string): never => {
      throw permissionDenied(`model "${name}" is public: only admin keys may ${action} it`);
    };
    return {
      root: own.root,
      loadAll: () => own.loadAll(),
      async load(name) {
        checkModelName(name);
        if (await own.has(name)) return own.load(name);
        if (await pub.has(name)) return admin ? pub.load(name) : writePublic(name, "load");
        throw notFound(`model "${name}" is not in the repository`);
      },
      async unload(name) {
        checkModelName(name);
        if (own.knows(name)) return own.unload(name);
        if (pub.knows(name)) return admin ? pub.unload(name) : writePublic(name, "unload");
        throw notFound(`model "${name}" is not loaded and not known`);
      },
      list() {
        const mine = own.list();
        const names = new Set(mine.map((m) => m.name));
        return [...mine, ...pub.list().filter((m) => !names.has(m.name))].sort((a, b) => a.name.localeCompare(b.name));
      },
      async has(name) {
        return (await own.has(name)) || (await pub.has(name));
      },
      knows(name) {
        return own.knows(name) || pub.knows(name);
      },
      async status(name) {
        checkModelName(name);
        return (await own.has(name)) ? own.status(name) : pub.status(name);
      },
      resolve(name, version) {
        return own.knows(name) ? own.resolve(name, version) : pub.resolve(name, version);
      },
      ready(name, version) {
        return own.knows(name) ? own.ready(name, version) : pub.ready(name, version);
      },
      close: async () => undefined,
    };
  };

  return {
    public: pub,
    for(caller) {
      if (!caller.tenant || !options.tenantRoot) return pub;
      const key = `${caller.tenant}\u0000${caller.roles.has("admin") ? "admin" : ""}`;
      let v = views.get(key);
      if (!v) views.set(key, (v = view(caller)));
      return v;
    },
    all: () => [pub, ...tenants.values()],
    async close() {
      await Promise.all([pub.close(), ...[...tenants.values()].map((r) => r.close())]);
    },
  };
}
