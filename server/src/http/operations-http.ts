import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import type { MetricsHandler } from "../telemetry/setup.js";
import type { ModelRegistry } from "../serving/index.js";
import { listenError } from "../common/listen-error.js";

export interface OperationsHttpOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The public models; undefined while the server is still loading them (not ready). */
  readonly registry: () => ModelRegistry | undefined;
  readonly isServing: () => boolean;
  readonly metrics?: MetricsHandler;
  /** Whether a scrape may read /metrics, from its authorization header; absent: anyone may. */
  readonly authorizeMetrics?: (authorization: string | undefined) => boolean;
  readonly logger: Logger;
}

export interface OperationsHttp {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The small HTTP port that Kubernetes probes and Prometheus scrape: the Open Inference Protocol's REST
 * health paths (public models only: a tenant's model answers 404 as a missing one) and /metrics, whose
 * series name tenants and their models and so may need a bearer token. It serves no payloads.
 */
export async function startOperationsHttp(options: OperationsHttpOptions): Promise<OperationsHttp> {
  const send = (res: import("node:http").ServerResponse, code: number, body: object): void => {
    res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, { error: "only GET" });
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/v2/health/live") return send(res, 200, { live: true });
    if (path === "/v2/health/ready") {
      // Ready once nothing is loading or healing and the server is not shutting down: a version whose
      // sessions are all being replaced takes the pod out of the load balancer until it heals.
      const registry = options.registry();
      const ready = options.isServing() && registry !== undefined && registry.list().every((m) => m.state !== "loading" && m.state !== "unavailable");
      return send(res, ready ? 200 : 503, { ready });
    }
    const model = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/ready$/.exec(path);
    if (model) {
      const [name, version] = [decodeURIComponent(model[1]), model[2] ? decodeURIComponent(model[2]) : ""];
      const registry = options.registry();
      if (!registry) return send(res, 503, { name, ready: false, error: "the server is starting: models are loading" });
      try {
        const loaded = registry.resolve(name, version);
        if (!registry.ready(name, version)) {
          const health = loaded.health();
          return send(res, 503, { name, ready: false, error: `${loaded.label} is ${health.state}: ${health.reason}` });
        }
        return send(res, 200, { name, ready: true });
      } catch (error) {
        const code = (error as { code?: number }).code;
        // NOT_FOUND (5) and INVALID_ARGUMENT (3) name a model that is not there; anything else is "not ready".
        return send(res, code === 5 || code === 3 ? 404 : 503, { name, ready: false, error: (error as Error).message });
      }
    }
    if (path === "/metrics" && options.metrics) {
      if (options.authorizeMetrics && !options.authorizeMetrics(req.headers.authorization)) {
        res.setHeader("www-authenticate", 'Bearer realm="aiaas metrics"');
        return send(res, 401, { error: "/metrics needs authorization: Bearer <the metrics token or an admin API key>" });
      }
      return options.metrics(req, res);
    }
    send(res, 404, { error: `no route ${path}` });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", (error) => reject(listenError(error, options.host, options.port, "--http-port")));
    server.listen(options.port, options.host, () => resolve((server.address() as { port: number }).port));
  });
  options.logger.info({ httpPort: port }, `operations HTTP (health, metrics) on ${options.host}:${port}`);
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
