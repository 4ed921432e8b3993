import type { ServiceError } from "@grpc/grpc-js";
import type { WatchTrafficResponse } from "./gen/aiaas/v1/models.js";
import { AiaasError } from "./errors.js";

/** One model version's traffic over one sampling interval (see the proto's VersionTraffic). */
export interface VersionTraffic {
  readonly model: string;
  readonly version: string;
  readonly requestsPerSecond: number;
  readonly errorsPerSecond: number;
  /** Bucket estimates, as Prometheus's histogram_quantile; 0 with no requests. */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly queueWaitMeanMs: number;
  readonly queueWaitP99Ms: number;
  readonly meanBatchSize: number;
  readonly batchesPerSecond: number;
  /** Failed requests by status name. */
  readonly errorsByCode: Readonly<Record<string, number>>;
}

/** What the caller's models served during one interval. */
export interface TrafficSample {
  readonly time: Date;
  readonly intervalSeconds: number;
  readonly versions: readonly VersionTraffic[];
}

const fromWire = (s: WatchTrafficResponse): TrafficSample => ({
  time: new Date(Number(s.timeUnixMs)),
  intervalSeconds: s.intervalSeconds,
  versions: s.versions.map((v) => ({ ...v, errorsByCode: Object.fromEntries(Object.entries(v.errorsByCode).map(([code, n]) => [code, Number(n)])) })),
});

/** The samples of a WatchTraffic stream until it ends or `signal` aborts. */
export async function* trafficSamples(stream: AsyncIterable<WatchTrafficResponse> & { cancel(): void }, signal: AbortSignal | undefined): AsyncGenerator<TrafficSample> {
  const onAbort = (): void => stream.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  try {
    for await (const sample of stream) yield fromWire(sample);
    finished = true;
  } catch (error) {
    if (signal?.aborted) return;
    throw error instanceof AiaasError ? error : AiaasError.from(error as ServiceError);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) stream.cancel();
  }
}


