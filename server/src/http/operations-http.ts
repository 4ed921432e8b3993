import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { listenError } from "../common/listen-error.js";
import { operationsRoutes, type OperationsAnswer, type OperationsRequest, type OperationsRoutesOptions } from "./operations-routes.js";

const MAX_BODY_BYTES = 64 * 1024;

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
    const aborted = new AbortController();
    // The client went away (or the response ended): a stream it watched stops.
    res.once("close", () => aborted.abort());
    void readBody(req).then((body) => {
      const request = {
        method: req.method ?? "GET",
        path: (req.url ?? "/").split("?")[0]!,
        authorization: req.headers.authorization,
        contentType: req.headers["content-type"],
        peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
        signal: aborted.signal,
        ...(body === undefined ? {} : { body }),
      };
      return answer(request).then((a) => respond(req.method, res, a, options.logger));
    }).catch((error: unknown) => {
      if (error instanceof BodyTooLarge) return void res.writeHead(413, { "content-type": "application/json" }).end(JSON.stringify({ error: error.message }));
      options.logger.error({ err: error }, "operations HTTP: a request failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "internal error" }));
      else res.destroy();
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", (error) => reject(listenError(error, options.host, options.port, "--http-port")));
    server.listen(options.port, options.host, () => resolve((server.address() as { port: number }).port));
  });
  options.logger.info({ httpPort: port }, `operations HTTP (health, metrics) on ${options.host}:${port}`);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open event streams (the console's) would hold the port open forever; they end with it.
        server.closeAllConnections();
      }),
  };
}

class BodyTooLarge extends Error {}

/** A POST's body (the console's API), up to 64 KiB; undefined for a request without one. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  if (req.method !== "POST") return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge(`the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Writes an answer; a streamed one chunk by chunk, waiting for the socket when the client reads slowly. */
async function respond(method: string | undefined, res: ServerResponse, a: OperationsAnswer, logger: Logger): Promise<void> {
  if (!a.stream) return void res.writeHead(a.status, a.headers).end(method === "HEAD" ? undefined : a.body);
  res.writeHead(a.status, a.headers);
  res.flushHeaders();
  try {
    for await (const chunk of a.stream) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await writable(res);
    }
  } catch (error) {
    logger.error({ err: error }, "operations HTTP: a stream failed");
  }
  res.end();
}

/** Resolves when the socket takes more, or the response is closed. */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done).off("close", done);
      resolve();
    };
    res.on("drain", done).on("close", done);
  });
}
