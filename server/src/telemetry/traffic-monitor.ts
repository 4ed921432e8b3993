// The console's Traffic page and WatchTraffic read the same hot-path instruments /metrics exports: every
// interval the monitor takes their cumulative values, keeps the difference from the last take per model
// version, and turns it into rates and bucket-estimated quantiles (as PromQL's rate() and histogram_quantile()
// would over the same interval).
import { hrTime } from "@opentelemetry/core";
import type { DataPoint, Histogram, MetricData } from "@opentelemetry/sdk-metrics";
import { instruments, metricProducer } from "./instruments.js";

/** One model version's traffic over one interval. */
export interface VersionTrafficData {
  /** The model's tenant ("" for a public model): who may see this series. */
  readonly tenant: string;
  readonly model: string;
  readonly version: string;
  readonly requestsPerSecond: number;
  readonly errorsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly queueWaitMeanMs: number;
  readonly queueWaitP99Ms: number;
  readonly meanBatchSize: number;
  readonly batchesPerSecond: number;
  /** Failed requests by status name. */
  readonly errorsByCode: Readonly<Record<string, number>>;
}

export interface TrafficSampleData {
  readonly timeUnixMs: number;
  readonly intervalSeconds: number;
  readonly versions: readonly VersionTrafficData[];
}

interface Histo {
  readonly boundaries: readonly number[];
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** The cumulative values of one take, by "tenant\0model\0version". */
interface Take {
  readonly at: number;
  readonly latency: Map<string, Histo>;
  readonly queue: Map<string, Histo>;
  readonly batch: Map<string, Histo>;
  /** Requests by version key, then by status name. */
  readonly requests: Map<string, Map<string, number>>;
}

const keyOf = (a: Record<string, unknown>): string => `${String(a.tenant ?? "")}\u0000${String(a.model ?? "")}\u0000${String(a.version ?? "")}`;

function histograms(data: MetricData): Map<string, Histo> {
  const out = new Map<string, Histo>();
  for (const p of data.dataPoints as DataPoint<Histogram>[]) {
    const v = p.value;
    out.set(keyOf(p.attributes), { boundaries: v.buckets.boundaries, counts: v.buckets.counts, count: v.count, sum: v.sum ?? 0 });
  }
  return out;
}

function take(): Take {
  const end = hrTime();
  const requests = new Map<string, Map<string, number>>();
  for (const p of instruments.requests.collect(end).dataPoints) {
    const key = keyOf(p.attributes);
    let byCode = requests.get(key);
    if (!byCode) requests.set(key, (byCode = new Map()));
    byCode.set(String(p.attributes.code), p.value as number);
  }
  return {
    at: Date.now(),
    latency: histograms(instruments.requestLatency.collect(end)),
    queue: histograms(instruments.queueWait.collect(end)),
    batch: histograms(instruments.batchSize.collect(end)),
    requests,
  };
}

/** The difference of two takes of one histogram series (the earlier may be missing: the series is new). */
function delta(now: Histo | undefined, before: Histo | undefined): Histo | undefined {
  if (!now) return undefined;
  if (!before) return now;
  return { boundaries: now.boundaries, counts: now.counts.map((c, i) => c - (before.counts[i] ?? 0)), count: now.count - before.count, sum: now.sum - before.sum };
}

/**
 * The q-quantile of a histogram as Prometheus's histogram_quantile computes it: linear within the bucket it
 * falls in, the lowest bucket starting at 0, and the upper bound of the last finite bucket past it.
 */
export function bucketQuantile(q: number, h: Histo | undefined): number {
  if (!h || h.count <= 0) return 0;
  const rank = q * h.count;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const inBucket = h.counts[i]!;
    if (below + inBucket >= rank && inBucket > 0) {
      if (i >= h.boundaries.length) return h.boundaries[h.boundaries.length - 1] ?? 0;
      const lower = i === 0 ? Math.min(0, h.boundaries[0]!) : h.boundaries[i - 1]!;
      const upper = h.boundaries[i]!;
      return lower + (upper - lower) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return h.boundaries[h.boundaries.length - 1] ?? 0;
}

function versionTraffic(key: string, now: Take, before: Take, seconds: number): VersionTrafficData | undefined {
  const [tenant = "", model = "", version = ""] = key.split("\u0000");
  if (!model) return undefined;
  const latency = delta(now.latency.get(key), before.latency.get(key));
  const queue = delta(now.queue.get(key), before.queue.get(key));
  const batch = delta(now.batch.get(key), before.batch.get(key));
  let requests = 0;
  const errorsByCode: Record<string, number> = {};
  for (const [code, n] of now.requests.get(key) ?? []) {
    const d = n - (before.requests.get(key)?.get(code) ?? 0);
    requests += d;
    if (code !== "OK" && d > 0) errorsByCode[code] = d;
  }
  const batches = batch?.count ?? 0;
  if (requests === 0 && batches === 0) return undefined;
  const errors = Object.values(errorsByCode).reduce((a, b) => a + b, 0);
  return {
    tenant,
    model,
    version,
    requestsPerSecond: requests / seconds,
    errorsPerSecond: errors / seconds,
    latencyP50Ms: bucketQuantile(0.5, latency),
    latencyP99Ms: bucketQuantile(0.99, latency),
    queueWaitMeanMs: queue && queue.count > 0 ? queue.sum / queue.count : 0,
    queueWaitP99Ms: bucketQuantile(0.99, queue),
    meanBatchSize: batch && batch.count > 0 ? batch.sum / batch.count : 0,
    batchesPerSecond: batches / seconds,
    errorsByCode,
  };
}

/** How often a sample is taken unless told otherwise. */
export const TRAFFIC_INTERVAL_MS = 2000;

export interface TrafficMonitorOptions {
  /** How often a sample is taken. */
  readonly intervalMs?: number;
  /** How many samples are kept for a new watcher (10 minutes at the default interval). */
  readonly keep?: number;
}

/** Samples the model traffic every interval and hands each sample to its watchers. */
export class TrafficMonitor {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly samples: TrafficSampleData[] = [];
  private readonly listeners = new Set<(sample: TrafficSampleData) => void>();
  private last: Take;
  private readonly timer: NodeJS.Timeout;

  constructor(options: TrafficMonitorOptions = {}) {
    this.intervalMs = options.intervalMs ?? TRAFFIC_INTERVAL_MS;
    this.keep = options.keep ?? Math.ceil(600_000 / this.intervalMs);
    // The hot instruments record nothing until someone reads them.
    metricProducer();
    this.last = take();
    this.timer = setInterval(() => this.sample(), this.intervalMs).unref();
  }

  /** The kept samples, oldest first. */
  history(): readonly TrafficSampleData[] {
    return this.samples;
  }

  /** Calls `listener` with each new sample; returns the unsubscription. */
  subscribe(listener: (sample: TrafficSampleData) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  private sample(): void {
    const now = take();
    const before = this.last;
    this.last = now;
    const seconds = (now.at - before.at) / 1000;
    if (seconds <= 0) return;
    const keys = new Set([...now.requests.keys(), ...now.batch.keys()]);
    const versions = [...keys].flatMap((key) => versionTraffic(key, now, before, seconds) ?? []);
    const sample = { timeUnixMs: now.at, intervalSeconds: seconds, versions };
    this.samples.push(sample);
    if (this.samples.length > this.keep) this.samples.shift();
    for (const listener of this.listeners) listener(sample);
  }
}
