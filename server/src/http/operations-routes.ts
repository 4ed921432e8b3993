import type { MetricsHandler } from "../telemetry/setup.js";
import type { ModelRegistry } from "../serving/index.js";
import { consoleApi, type ConsoleBackend } from "./console-api.js";
import { consoleAssets } from "./console-assets.js";
import type { OperationsAnswer, OperationsRequest } from "./operations-types.js";

export type { OperationsAnswer, OperationsRequest } from "./operations-types.js";

export interface OperationsRoutesOptions {
  /** The public models; undefined while the server is still loading them (not ready). */
  readonly registry: () => ModelRegistry | undefined;
  readonly isServing: () => boolean;
  readonly metrics?: MetricsHandler;
  /** Whether a scrape may read /metrics, from its authorization header; absent: anyone may. */
  readonly authorizeMetrics?: (authorization: string | undefined) => boolean;
  /** The console (`/` and its API `/api/...`); absent: neither is served. */
  readonly console?: () => ConsoleBackend | undefined;
}

const json = (status: number, body: object, headers: Record<string, string> = {}): OperationsAnswer => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/**
 * What the operations port answers: the Open Inference Protocol's REST health paths (public models only: a
 * tenant's model answers 404 as a missing one) and /metrics, whose series name tenants and their models and
 * so may need a bearer token. It serves no payloads.
 */
export function operationsRoutes(options: OperationsRoutesOptions): (request: OperationsRequest) => Promise<OperationsAnswer> {
  const api = options.console && consoleApi(options.console);
  const assets = options.console && consoleAssets();
  return async (request) => {
    const { method, path, authorization } = request;
    const fromConsole = api?.(request) ?? (method === "GET" || method === "HEAD" ? assets?.(path) : undefined);
    if (fromConsole) return fromConsole;
    if (method !== "GET" && method !== "HEAD") return json(405, { error: "only GET" });
    if (path === "/v2/health/live") return json(200, { live: true });
    if (path === "/v2/health/ready") {
      // Ready once nothing is loading or healing and the server is not shutting down: a version whose
      // sessions are all being replaced takes the pod out of the load balancer until it heals.
      const registry = options.registry();
      const ready = options.isServing() && registry !== undefined && registry.list().every((m) => m.state !== "loading" && m.state !== "unavailable");
      return json(ready ? 200 : 503, { ready });
    }
    const model = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/ready$/.exec(path);
    if (model) return modelReady(options, decodeURIComponent(model[1]!), model[2] ? decodeURIComponent(model[2]) : "");
    if (path === "/metrics" && options.metrics) {
      if (options.authorizeMetrics && !options.authorizeMetrics(authorization)) {
        return json(401, { error: "/metrics needs authorization: Bearer <the metrics token or an admin API key>" }, { "www-authenticate": 'Bearer realm="aiaas metrics"' });
      }
      return { status: 200, headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" }, body: await options.metrics() };
    }
    return json(404, { error: `no route ${path}` });
  };
}

function modelReady(options: OperationsRoutesOptions, name: string, version: string): OperationsAnswer {
  const registry = options.registry();
  if (!registry) return json(503, { name, ready: false, error: "the server is starting: models are loading" });
  try {
    const loaded = registry.resolve(name, version);
    if (!registry.ready(name, version)) {
      const health = loaded.health();
      return json(503, { name, ready: false, error: `${loaded.label} is ${health.state}: ${health.reason}` });
    }
    return json(200, { name, ready: true });
  } catch (error) {
    const code = (error as { code?: number }).code;
    // NOT_FOUND (5) and INVALID_ARGUMENT (3) name a model that is not there; anything else is "not ready".
    return json(code === 5 || code === 3 ? 404 : 503, { name, ready: false, error: (error as Error).message });
  }
}
