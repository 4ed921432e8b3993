import { access, mkdir, open, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { failedPrecondition, notFound } from "../../common/errors.js";
import type { TrainState } from "../engine/train-worker-protocol.js";
import { decodeBundle, encodeBundle, type BundleTensor } from "../tensor-bundle.js";

/** Where a run stands: enough to continue it exactly (the shuffle is a function of seed and epoch). */
export interface CheckpointMeta {
  readonly jobId: string;
  /** The tenant that owns the job (absent: the operator); only that tenant can resume from it. */
  readonly tenant?: string;
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
/** The operator's folder: tenant names start with a letter or digit, so none is `_`. */
const OPERATOR = "_";

const missing = (jobId: string, checkpointId: string) =>
  notFound(`checkpoint "${jobId}/${checkpointId}" not found (the server keeps a job's newest ${KEEP})`);

/**
 * Checkpoints on disk: `<dir>/<owner>/<job id>/<step>.ckpt`, where the owner is the job's tenant (`_` for the
 * operator, a name no tenant can have), each parameters + optimizer state + position, written to a temporary
 * file, synced and renamed so a checkpoint is whole or absent. A job keeps its newest few. A reference resolves
 * only inside the caller's own folder, and the owner recorded in the file must match too: another tenant's
 * checkpoint answers exactly as a missing one, whatever its id.
 */
export class CheckpointStore {
  constructor(private readonly dir: string) {}

  private jobDir(tenant: string | undefined, jobId: string): string {
    return join(this.dir, tenant ?? OPERATOR, jobId);
  }

  async write(checkpoint: Checkpoint): Promise<string> {
    const jobDir = this.jobDir(checkpoint.meta.tenant, checkpoint.meta.jobId);
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

  /** Throws NOT_FOUND unless the tenant owns such a checkpoint (checked when a job is submitted, before its upload). */
  async check(tenant: string | undefined, jobId: string, checkpointId: string): Promise<void> {
    try {
      await access(join(this.jobDir(tenant, jobId), `${checkpointId}.ckpt`));
    } catch {
      throw missing(jobId, checkpointId);
    }
  }

  async read(tenant: string | undefined, jobId: string, checkpointId: string): Promise<Checkpoint> {
    const path = join(this.jobDir(tenant, jobId), `${checkpointId}.ckpt`);
    let bundle;
    try {
      bundle = decodeBundle(await readFile(path), path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw missing(jobId, checkpointId);
      // The path and the decoder's words are the server's business, not the client's.
      throw failedPrecondition(`checkpoint "${jobId}/${checkpointId}" is unreadable; resume from another checkpoint of the job`);
    }
    const meta = bundle.meta as unknown as CheckpointMeta;
    if (meta.jobId !== jobId || meta.tenant !== tenant) throw missing(jobId, checkpointId);
    const params: TrainState["params"] = {};
    const state: TrainState["state"] = {};
    for (const [key, t] of bundle.tensors) {
      const tensor = { type: "float32" as const, dims: t.dims, data: t.data };
      if (key.startsWith("param:")) (params as Record<string, typeof tensor>)[key.slice(6)] = tensor;
      else if (key.startsWith("state:")) (state as Record<string, typeof tensor>)[key.slice(6)] = tensor;
    }
    return { meta, state: { params, state } };
  }

  /** The id of a job's newest checkpoint ("<job>/<step>"), or undefined when it has none. */
  async newest(tenant: string | undefined, jobId: string): Promise<string | undefined> {
    const files = await readdir(this.jobDir(tenant, jobId)).catch(() => [] as string[]);
    const steps = files.filter((f) => /^[0-9]+\.ckpt$/.test(f)).map((f) => Number(f.slice(0, -5)));
    return steps.length ? `${jobId}/${Math.max(...steps)}` : undefined;
  }
}
