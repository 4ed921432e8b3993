import { mkdir, open, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { failedPrecondition, notFound } from "../../errors.js";
import type { TrainState } from "../engine/train-worker-protocol.js";
import { decodeBundle, encodeBundle, type BundleTensor } from "../tensor-bundle.js";

/** Where a run stands: enough to continue it exactly (the shuffle is a function of seed and epoch). */
export interface CheckpointMeta {
  readonly jobId: string;
  readonly step: number;
  readonly epoch: number;
  /** Batches of `epoch` already done. */
  readonly batchInEpoch: number;
  readonly trainRows: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly bestMetric: number | null;
  readonly epochsSinceBest: number;
  readonly seconds: number;
}

export interface Checkpoint {
  readonly meta: CheckpointMeta;
  readonly state: TrainState;
}

const KEEP = 3;

/**
 * Checkpoints on disk: `<dir>/<job id>/<step>.ckpt`, each parameters + optimizer state + position, written to a
 * temporary file, synced and renamed so a checkpoint is whole or absent. A job keeps its newest few.
 */
export class CheckpointStore {
  constructor(private readonly dir: string) {}

  async write(checkpoint: Checkpoint): Promise<string> {
    const jobDir = join(this.dir, checkpoint.meta.jobId);
    await mkdir(jobDir, { recursive: true, mode: 0o700 });
    const tensors = new Map<string, BundleTensor>();
    for (const [name, t] of Object.entries(checkpoint.state.params)) tensors.set(`param:${name}`, { type: "float32", dims: t.dims, data: t.data as Float32Array });
    for (const [name, t] of Object.entries(checkpoint.state.state)) tensors.set(`state:${name}`, { type: "float32", dims: t.dims, data: t.data as Float32Array });
    const id = String(checkpoint.meta.step);
    const path = join(jobDir, `${id}.ckpt`);
    const temp = join(jobDir, `.${id}.ckpt.tmp`);
    // Written from the event loop without blocking it: a checkpoint can be many megabytes.
    const file = await open(temp, "w", 0o600); // a tenant's weights: private to the server's user
    try {
      await file.writeFile(encodeBundle({ meta: checkpoint.meta as unknown as Record<string, unknown>, tensors }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    const all = (await readdir(jobDir)).filter((f) => /^[0-9]+\.ckpt$/.test(f)).map((f) => Number(f.slice(0, -5))).sort((a, b) => b - a);
    for (const old of all.slice(KEEP)) await rm(join(jobDir, `${old}.ckpt`), { force: true });
    return `${checkpoint.meta.jobId}/${id}`;
  }

  async read(jobId: string, checkpointId: string): Promise<Checkpoint> {
    const path = join(this.dir, jobId, `${checkpointId}.ckpt`);
    let bundle;
    try {
      bundle = decodeBundle(await readFile(path), path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw notFound(`checkpoint "${jobId}/${checkpointId}" not found (the server keeps a job's newest ${KEEP})`);
      throw failedPrecondition(`checkpoint "${jobId}/${checkpointId}" is unreadable: ${(error as Error).message}`);
    }
    const params: TrainState["params"] = {};
    const state: TrainState["state"] = {};
    for (const [key, t] of bundle.tensors) {
      const tensor = { type: "float32" as const, dims: t.dims, data: t.data };
      if (key.startsWith("param:")) (params as Record<string, typeof tensor>)[key.slice(6)] = tensor;
      else if (key.startsWith("state:")) (state as Record<string, typeof tensor>)[key.slice(6)] = tensor;
    }
    return { meta: bundle.meta as unknown as CheckpointMeta, state: { params, state } };
  }
}
