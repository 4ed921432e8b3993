import { readFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import type { Server, ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { listenError } from "../common/listen-error.js";
import { restoreDuplicateHeaders } from "./duplicate-headers.js";

export interface ListenerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly credentials: ServerCredentials;
  /** Open connections at most; more are closed at once (default: from the process's file descriptor limit). */
  readonly maxConnections?: number;
  /**
   * A new connection must deliver its first bytes of protocol (TLS hello or the HTTP/2 preface and SETTINGS)
   * within this long, or it is closed: a client that trickles bytes cannot hold a descriptor for free
   * (absent or 0: never; the server passes its default).
   */
  readonly handshakeTimeoutMs?: number;
  readonly logger: Logger;
}

export interface Listener {
  readonly port: number;
  /**
   * Starts serving connections. The port is bound (and its clash reported) before the models load; until
   * this is called, connections wait in the kernel's and this queue.
   */
  accept(): void;
  /** Connections open now. */
  connections(): Promise<number>;
  /** Stops accepting connections (grpc-js closes the ones it has); resolves when the last one has closed. */
  close(): Promise<void>;
  /**
   * Destroys the connections still open: after a shutdown's grace, a client that keeps its half of a stream
   * open (an upload it never ends) would otherwise hold the process until it gives up.
   */
  destroyConnections(): void;
}

// The HTTP/2 client preface (24 bytes) and a SETTINGS frame header (9): what a real client sends at once.
const PREFACE_BYTES = 33;
const RESERVED_DESCRIPTORS = 256;

/** The soft limit of open files (Linux); 1024 where it cannot be read. */
export function descriptorLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === "unlimited") return 1 << 20;
    const n = Number(soft);
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // not Linux: the common default below
  }
  return 1024;
}

/** Descriptors left for connections after models, workers, files and logs take theirs. */
export const defaultMaxConnections = (): number => Math.max(32, descriptorLimit() - RESERVED_DESCRIPTORS);

/**
 * The gRPC port, owned here rather than by grpc-js so every connection is accounted for: a cap on open
 * connections and a handshake deadline. Connections are handed to grpc-js through its connection injector,
 * which speaks TLS and HTTP/2 on them; its idle timeout (grpc.max_connection_idle_ms) and keepalive pings
 * close connections that opened but stay silent.
 */
export async function listen(server: Server, options: ListenerOptions): Promise<Listener> {
  const { logger } = options;
  const injector = server.createConnectionInjector(options.credentials);
  restoreDuplicateHeaders(server);
  const maxConnections = options.maxConnections ?? defaultMaxConnections();
  const handshakeMs = options.handshakeTimeoutMs ?? 0;
  let refusedSinceLog = 0;
  let lastRefusalLog = 0;
  let pending: Socket[] | undefined = [];
  const open = new Set<Socket>();
  const serve = (socket: Socket): void => {
    if (socket.destroyed) return;
    if (handshakeMs > 0) {
      const timer = setTimeout(() => {
        if (socket.bytesRead < PREFACE_BYTES) socket.destroy();
      }, handshakeMs);
      timer.unref();
      socket.once("close", () => clearTimeout(timer));
    }
    injector.injectConnection(socket);
  };
  const net = createServer({ noDelay: true }, (socket: Socket) => {
    // Stray errors of a connection (resets) are the connection's business, not the process's.
    socket.on("error", () => undefined);
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    if (pending) pending.push(socket);
    else serve(socket);
  });
  net.maxConnections = maxConnections;
  net.on("drop", () => {
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastRefusalLog >= 10_000) {
      logger.warn({ maxConnections, refused: refusedSinceLog }, `connection limit of ${maxConnections} reached: refused ${refusedSinceLog} connection(s); raise --max-connections or the file descriptor limit`);
      lastRefusalLog = now;
      refusedSinceLog = 0;
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    const failed = (error: Error): void => {
      injector.destroy();
      reject(listenError(error, options.host, options.port, "--port"));
    };
    net.once("error", failed);
    net.listen({ host: options.host, port: options.port }, () => {
      net.removeListener("error", failed);
      resolve((net.address() as { port: number }).port);
    });
  });
  // Once listening, an error of the listening socket is logged; the connections already served go on.
  net.on("error", (error) => logger.error({ err: error }, "the gRPC listening socket failed"));
  return {
    port,
    accept() {
      const waiting = pending ?? [];
      pending = undefined;
      for (const socket of waiting) serve(socket);
    },
    connections: () => Promise.resolve(open.size),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of pending ?? []) socket.destroy();
        pending = undefined;
        net.close(() => resolve());
        injector.destroy();
      }),
    destroyConnections() {
      for (const socket of open) socket.destroy();
    },
  };
}
