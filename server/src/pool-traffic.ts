// The console's traffic of a pool (`--processes N`): each serving process samples its own instruments every
// interval, so the primary merges their WatchTraffic streams into one. Samples are grouped by interval slot
// (a process's sample time rounded to the interval); in a slot, counts add up (requests, errors, batches, rows,
// queue time), so rates and means are the pool's exactly; a latency quantile is the highest of the processes'
// (a bucket estimate per process: their histograms do not cross the IPC), an upper bound of the pool's.
import type { OperationsAnswer } from "./http/operations-routes.js";

interface Version {
  model: string;
  version: string;
  requestsPerSecond?: number;
  errorsPerSecond?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  queueWaitMeanMs?: number;
  queueWaitP99Ms?: number;
  meanBatchSize?: number;
  batchesPerSecond?: number;
  errorsByCode?: Record<string, string>;
}
interface Sample {
  timeUnixMs: string;
  intervalSeconds: number;
  versions?: Version[];
}

/** Sums one slot's samples (from any processes) into the pool's sample. */
export function mergeSamples(samples: readonly Sample[], slotSeconds: number, timeUnixMs: number): Sample {
  const byVersion = new Map<string, { v: Version; requests: number; errors: number; batches: number; rows: number; queued: number; codes: Map<string, number> }>();
  for (const s of samples) {
    for (const v of s.versions ?? []) {
      const key = `${v.model}\u0000${v.version}`;
      let m = byVersion.get(key);
      if (!m) byVersion.set(key, (m = { v: { model: v.model, version: v.version, latencyP50Ms: 0, latencyP99Ms: 0, queueWaitP99Ms: 0 }, requests: 0, errors: 0, batches: 0, rows: 0, queued: 0, codes: new Map() }));
      const requests = (v.requestsPerSecond ?? 0) * s.intervalSeconds;
      const batches = (v.batchesPerSecond ?? 0) * s.intervalSeconds;
      m.requests += requests;
      m.errors += (v.errorsPerSecond ?? 0) * s.intervalSeconds;
      m.batches += batches;
      m.rows += (v.meanBatchSize ?? 0) * batches;
      m.queued += (v.queueWaitMeanMs ?? 0) * requests;
      m.v.latencyP50Ms = Math.max(m.v.latencyP50Ms!, v.latencyP50Ms ?? 0);
      m.v.latencyP99Ms = Math.max(m.v.latencyP99Ms!, v.latencyP99Ms ?? 0);
      m.v.queueWaitP99Ms = Math.max(m.v.queueWaitP99Ms!, v.queueWaitP99Ms ?? 0);
      for (const [code, n] of Object.entries(v.errorsByCode ?? {})) m.codes.set(code, (m.codes.get(code) ?? 0) + Number(n));
    }
  }
  return {
    timeUnixMs: String(timeUnixMs),
    intervalSeconds: slotSeconds,
    versions: [...byVersion.values()].map((m) => ({
      ...m.v,
      requestsPerSecond: m.requests / slotSeconds,
      errorsPerSecond: m.errors / slotSeconds,
      queueWaitMeanMs: m.requests > 0 ? m.queued / m.requests : 0,
      meanBatchSize: m.batches > 0 ? m.rows / m.batches : 0,
      batchesPerSecond: m.batches / slotSeconds,
      errorsByCode: Object.fromEntries([...m.codes].map(([code, n]) => [code, String(n)])),
    })),
  };
}

/** The `data:` payloads of server-sent event chunks (one event per chunk, as the console's API writes them). */
async function* payloads(chunks: AsyncIterable<string>): AsyncGenerator<{ end: boolean; data: string }> {
  for await (const chunk of chunks) {
    const data = /^data: (.*)$/m.exec(chunk)?.[1];
    if (data !== undefined) yield { end: chunk.startsWith("event: end"), data };
  }
}

/**
 * One WatchTraffic stream from every process's: a slot is sent once every process has sent a later one, or
 * one interval after it closed (a process that fell silent does not hold the stream up).
 */
export function mergeTrafficStreams(answers: readonly OperationsAnswer[], intervalMs: number): AsyncIterable<string> {
  const slots = new Map<number, Sample[]>();
  const newest = answers.map(() => -Infinity);
  const out: string[] = [];
  let sent = -Infinity;
  let open = answers.length;
  let wake: (() => void) | undefined;
  const flush = (force: boolean): void => {
    const ready = Math.min(...newest);
    const due = Math.floor(Date.now() / intervalMs) - 2;
    for (const slot of [...slots.keys()].sort((a, b) => a - b)) {
      if (!(slot < ready || (force && slot <= due))) break;
      if (slot > sent) out.push(`data: ${JSON.stringify(mergeSamples(slots.get(slot)!, intervalMs / 1000, slot * intervalMs))}\n\n`);
      sent = Math.max(sent, slot);
      slots.delete(slot);
    }
    wake?.();
  };
  answers.forEach((answer, i) => {
    void (async () => {
      for await (const { end, data } of payloads(answer.stream ?? emptyStream())) {
        if (end) break;
        const sample = JSON.parse(data) as Sample;
        const slot = Math.round(Number(sample.timeUnixMs) / intervalMs);
        newest[i] = Math.max(newest[i]!, slot);
        if (slot > sent) slots.set(slot, [...(slots.get(slot) ?? []), sample]);
        flush(false);
      }
      open--;
      wake?.();
    })();
  });
  return (async function* () {
    const timer = setInterval(() => flush(true), intervalMs).unref();
    try {
      while (open > 0 || out.length > 0) {
        const next = out.shift();
        if (next !== undefined) yield next;
        else await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      yield `event: end\ndata: ${JSON.stringify({ code: "OK" })}\n\n`;
    } finally {
      // The processes' streams stop with the HTTP request's signal (the primary sends each a "cancel").
      clearInterval(timer);
    }
  })();
}

async function* emptyStream(): AsyncGenerator<string> {}
