import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import { listenError } from "../common/listen-error.js";
import { operationsRoutes, type OperationsAnswer, type OperationsRequest, type OperationsRoutesOptions } from "./operations-routes.js";

export interface OperationsHttpOptions extends Partial<OperationsRoutesOptions> {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The answers, when not the routes of this process (the primary of `--processes` asks its workers). */
  readonly answer?: (request: OperationsRequest) => Promise<OperationsAnswer>;
  readonly logger: Logger;
}

export interface OperationsHttp {
  readonly port: number;
  close(): Promise<void>;
}

/** The small HTTP port that Kubernetes probes and Prometheus scrape (see operationsRoutes). */
export async function startOperationsHttp(options: OperationsHttpOptions): Promise<OperationsHttp> {
  const answer = options.answer ?? operationsRoutes({ registry: () => undefined, isServing: () => false, ...options });
  const server: Server = createServer((req, res) => {
    const request = { method: req.method ?? "GET", path: (req.url ?? "/").split("?")[0]!, authorization: req.headers.authorization };
    answer(request).then(
      (a) => res.writeHead(a.status, a.headers).end(req.method === "HEAD" ? undefined : a.body),
      (error: unknown) => {
        options.logger.error({ err: error }, "operations HTTP: a request failed");
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "internal error" }));
      },
    );
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
