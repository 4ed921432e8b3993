// What the benches share to summarize a run: the median of rounds, and a model's own counters from the server.
import type { GetModelResponse, ModelsClient } from "@aiaas/sdk/gen";

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A model's batches, rows and failed requests so far, from the server's statistics (its first version). */
export async function modelCounters(models: ModelsClient, name: string): Promise<{ batches: number; rows: number; failures: number; inlineBatches: number }> {
  const res = await new Promise<GetModelResponse>((resolve, reject) => models.getModel({ name }, (e, r) => (e ? reject(e) : resolve(r))));
  const stats = res.model!.versions[0]!.statistics!;
  return { batches: Number(stats.batchCount), rows: Number(stats.inferenceCount), failures: Number(stats.failureCount), inlineBatches: Number(stats.inlineBatchCount) };
}

/** Codes a load generator causes itself: its own deadline, and calls cut off when a timed load stops. */
const EXPECTED_CODES = new Set(["OK", "DEADLINE_EXCEEDED", "CANCELLED"]);

/**
 * Predict requests by status code from a server's /metrics (`aiaas_request_count_total`, every model and
 * process), and the codes among them that no load generator explains: any of those fails the benchmark.
 */
export async function requestCodes(httpPort: number): Promise<{ byCode: Record<string, number>; unexpected: Record<string, number> }> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const byCode: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("aiaas_request_count_total{")) continue;
    const code = /[{,]code="([A-Z_]+)"/.exec(line)?.[1] ?? "unknown";
    byCode[code] = (byCode[code] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  const unexpected = Object.fromEntries(Object.entries(byCode).filter(([code, n]) => !EXPECTED_CODES.has(code) && n > 0));
  return { byCode, unexpected };
}

/** The operations port a server printed it listens on ("operations HTTP … on host:port"). */
export const httpPortOf = (entries: readonly Record<string, unknown>[]): number | undefined => entries.find((e) => typeof e.httpPort === "number")?.httpPort as number | undefined;
