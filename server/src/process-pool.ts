import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { unavailable } from "./common/errors.js";
import { startOperationsHttp, type OperationsHttp } from "./http/operations-http.js";
import type { OperationsAnswer, OperationsRequest } from "./http/operations-routes.js";
import { mergePrometheusText } from "./telemetry/merge-prometheus.js";
import { openStateDatabase } from "./server-state.js";
import { DatabaseHost, openIpcDatabase, type Database, type DatabaseReply, type DatabaseRequest } from "./state/index.js";
import type { RunningServer } from "./server.js";
import { mergeTrafficStreams } from "./pool-traffic.js";
import { TRAFFIC_INTERVAL_MS } from "./telemetry/traffic-monitor.js";
import { answerOperations, operationsAsker, sendTo, type ToPrimary, type ToWorker } from "./pool-operations.js";

export interface ProcessPoolOptions {
  readonly processes: number;
  /** The state folder whose embedded database the primary serves to the processes (absent: they use --database-url). */
  readonly stateDir: string | undefined;
  /** The operations port the primary serves for all of them (absent: none). */
  readonly http: { readonly host: string; readonly port: number } | undefined;
  readonly logger: Logger;
}

/** "auto" is one serving process per core. */
export const resolveProcesses = (n: number | "auto"): number => (n === "auto" ? availableParallelism() : n);

const MAX_BACKOFF_MS = 30_000;

/**
 * The primary of `aiaas serve --processes N`: forks N serving processes of the same command, which all listen on
 * the one gRPC port (Node's cluster module; each accepts its connections from the shared socket), restarts one that dies
 * (backoff from 250 ms to 30 s while it keeps dying), serves the operations port for all of them (ready when every
 * process is; /metrics merged, each series labelled with its process) and, on SIGTERM or SIGINT, drains them
 * (each finishes its calls) before it exits. Resolves when the pool has stopped.
 */
export async function runProcessPool(options: ProcessPoolOptions): Promise<void> {
  const { logger, processes } = options;
  // Each process accepts from the shared socket itself (the kernel's queue), not through the primary: the
  // primary's round robin loses a connection it hands to a process at the moment that process dies, and the
  // client's calls then go into a socket nobody reads. A busy process returns to accept() later, so new
  // connections lean toward the less loaded one.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Bytes and bigints cross the IPC as they are (the embedded database's rows and parameters).
  cluster.setupPrimary({ serialization: "advanced" });
  const state = options.stateDir ? await openStateDatabase(options.stateDir, logger) : undefined;
  const host = state && new DatabaseHost(state.db);
  const slots: (Worker | undefined)[] = new Array(processes).fill(undefined);
  const listening = new Set<number>();
  const { ask, received, gone } = operationsAsker();
  let stopping = false;
  let announced = false;
  const failures = new Array<number>(processes).fill(0);
  let stopPool!: (signal: string) => void;
  let failStart!: (error: Error) => void;

  const start = (index: number): void => {
    const worker = cluster.fork({ AIAAS_PROCESS_INDEX: String(index), AIAAS_POOL_DATABASE: host ? "primary" : "" });
    slots[index] = worker;
    // A process killed with kill -9 closes its channel before the primary sees it exit: a send in between
    // fails (EPIPE), and a Worker's unheard 'error' would take the primary down with it.
    worker.on("error", (error) => logger.warn({ process: index, err: error }, `serving process ${index}: its IPC channel failed`));
    const detach = host?.attach({ send: (m) => void sendTo(worker, m), onMessage: (h) => worker.on("message", h) });
    const startedAt = Date.now();
    worker.on("message", (message: ToPrimary) => {
      if (message.t !== "listening") received(message);
      else {
        listening.add(index);
        if (!announced && listening.size === processes) {
          announced = true;
          logger.info({ address: message.address, processes }, `aiaas listening on ${message.address} with ${processes} processes`);
        }
      }
    });
    worker.on("exit", (code, signal) => {
      detach?.();
      gone(worker);
      const wasListening = listening.delete(index);
      slots[index] = undefined;
      if (stopping) return;
      // One that never came up while the pool was starting: the command is wrong (it said why on stderr).
      if (!announced && !wasListening) return failStart(unavailable(`serving process ${index} could not start (${signal ?? `exit code ${code}`}); its error is above`));
      // One that ran a minute starts its backoff anew.
      failures[index] = Date.now() - startedAt > 60_000 ? 1 : failures[index]! + 1;
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** (failures[index]! - 1));
      logger.error({ process: index, code, signal }, `serving process ${index} exited (${signal ?? `code ${code}`}); starting it again in ${delay} ms`);
      setTimeout(() => !stopping && start(index), delay).unref();
    });
  };

  let http: OperationsHttp | undefined;
  if (options.http) http = await startOperationsHttp({ ...options.http, logger, answer: (request) => poolAnswer(request, slots, listening, processes, ask) });
  for (let i = 0; i < processes; i++) start(i);

  const stopped = new Promise<void>((resolve, reject) => {
    const drain = (): Promise<void> =>
      new Promise((drained) => {
        for (const w of slots) w?.process.kill("SIGTERM");
        const check = (): void => {
          if (slots.every((w) => w === undefined)) drained();
        };
        cluster.on("exit", check);
        check();
      });
    stopPool = (signal) => {
      if (stopping) return;
      stopping = true;
      logger.info(`${signal}: draining ${processes} serving processes, then exiting`);
      void drain().then(resolve);
    };
    failStart = (error) => {
      if (stopping) return;
      stopping = true;
      void drain().then(() => reject(error));
    };
  });
  process.on("SIGTERM", () => stopPool("SIGTERM"));
  process.on("SIGINT", () => stopPool("SIGINT"));
  try {
    await stopped;
  } finally {
    await http?.close();
    await state?.close();
  }
  logger.info("aiaas stopped");
}

/** The operations port of the pool: ready when every process is, metrics from all, anything else from one. */
async function poolAnswer(
  request: OperationsRequest,
  slots: readonly (Worker | undefined)[],
  listening: ReadonlySet<number>,
  processes: number,
  ask: (worker: Worker, request: OperationsRequest) => Promise<OperationsAnswer>,
): Promise<OperationsAnswer> {
  // Only a process that has said it listens is asked: one still starting has no one reading its channel yet,
  // and a question sent then would wait out the 5 s timeout.
  const live = slots.flatMap((w, i) => (w && listening.has(i) ? [{ w, i }] : []));
  const json = (status: number, body: object): OperationsAnswer => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (request.path === "/v2/health/live") return json(200, { live: true, processes: slots.filter(Boolean).length });
  if (live.length === 0) return json(503, { error: "no serving process is serving yet" });
  if (request.path === "/v2/health/ready") {
    const answers = await Promise.all(live.map(({ w }) => ask(w, request)));
    const ready = live.length === processes && answers.every((a) => a.status === 200);
    return json(ready ? 200 : 503, { ready, processes: live.length, ready_processes: answers.filter((a) => a.status === 200).length });
  }
  if (request.path === "/metrics") {
    const answers = await Promise.all(live.map(async ({ w, i }) => ({ process: String(i), answer: await ask(w, request) })));
    const refused = answers.find((a) => a.answer.status !== 200);
    if (refused) return refused.answer;
    return { status: 200, headers: answers[0]!.answer.headers, body: mergePrometheusText(answers.map((a) => ({ process: a.process, text: a.answer.body }))) };
  }
  if (request.path === "/api/aiaas.v1.Models/WatchTraffic") {
    // Every process's traffic, merged; a refusal (no key, a bad body) is the same from each: pass the first on.
    const answers = await Promise.all(live.map(({ w }) => ask(w, request)));
    return answers.find((a) => !a.stream) ?? { ...answers[0]!, stream: mergeTrafficStreams(answers, TRAFFIC_INTERVAL_MS) };
  }
  const one = live[Math.floor(Math.random() * live.length)]!;
  return ask(one.w, request);
}

/** In a serving process of a pool: tells the primary where it listens and answers its operations requests. */
export function serveAsPoolProcess(server: RunningServer): void {
  const answer = answerOperations(server.operations, (message) => process.send?.(message));
  process.on("message", (message: ToWorker) => {
    if (message?.t === "ask" || message?.t === "cancel") answer(message);
  });
  process.send?.({ t: "listening", address: server.address } satisfies ToPrimary);
}

export const isPoolProcess = (): boolean => cluster.isWorker;

/** In a serving process of a pool without --database-url: the primary's embedded database, over the IPC. */
export function poolDatabase(): Database | undefined {
  if (!cluster.isWorker || process.env.AIAAS_POOL_DATABASE !== "primary") return undefined;
  return openIpcDatabase({
    send: (m: DatabaseRequest) => process.send!(m),
    onMessage: (h: (m: DatabaseReply) => void) => process.on("message", h),
  });
}
