// What the benches share to summarize a run: the median of rounds, and a model's own counters from the server.
import type { GetModelResponse, ModelsClient } from "@aiaas/sdk/gen";

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A model's batches, rows and failed requests so far, from the server's statistics (its first version). */
export async function modelCounters(models: ModelsClient, name: string): Promise<{ batches: number; rows: number; failures: number }> {
  const res = await new Promise<GetModelResponse>((resolve, reject) => models.getModel({ name }, (e, r) => (e ? reject(e) : resolve(r))));
  const stats = res.model!.versions[0]!.statistics!;
  return { batches: Number(stats.batchCount), rows: Number(stats.inferenceCount), failures: Number(stats.failureCount) };
}
