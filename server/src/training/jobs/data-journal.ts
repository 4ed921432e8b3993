import { mkdir, open, readdir, readFile, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { isTensorType, type HostTensor } from "../../runtime/index.js";
import type { DecodedChunk } from "./job-data.js";

/** The operator's folder: tenant names start with a letter or digit, so none is `_`. */
const OPERATOR = "_";

interface ChunkHeader {
  readonly validation: boolean;
  readonly tensors: readonly { readonly name: string; readonly type: string; readonly dims: readonly number[]; readonly bytes: number }[];
}

/** One job's uploaded chunks, appended as they are accepted. */
export interface DataWriter {
  append(chunk: DecodedChunk): void;
  /** Resolves once every chunk is written and synced to disk (before the job says its data is complete). */
  finish(): Promise<void>;
  /** Waits for the writes under way and closes the file (a job that ended before its data was complete). */
  abandon(): Promise<void>;
}

/**
 * A job's uploaded data kept on disk until the job ends, so a job taken up again after a restart trains on
 * what the client sent without it sending again: `<dir>/<tenant>/<job>.chunks` (the operator's under `_`),
 * readable by the server's user only (0600, folders 0700), deleted when the job ends. Each record is a u32
 * header length, a JSON header (validation flag, tensor names, types, dims, byte counts), then the bytes.
 */
export class DataJournal {
  constructor(private readonly dir: string) {}

  private path(tenant: string | undefined, jobId: string): string {
    return join(this.dir, tenant ?? OPERATOR, `${jobId}.chunks`);
  }

  writer(tenant: string | undefined, jobId: string): DataWriter {
    const path = this.path(tenant, jobId);
    let file: Promise<FileHandle> | undefined;
    let writing: Promise<unknown> = Promise.resolve();
    const handle = (): Promise<FileHandle> =>
      (file ??= mkdir(join(this.dir, tenant ?? OPERATOR), { recursive: true, mode: 0o700 }).then(() => open(path, "a", 0o600)));
    return {
      append(chunk) {
        const record = encodeChunk(chunk);
        writing = writing.then(async () => (await handle()).write(record));
      },
      async finish() {
        await writing;
        const f = await handle();
        await f.sync();
        await f.close();
      },
      async abandon() {
        await writing.catch(() => undefined);
        await (await file?.catch(() => undefined))?.close();
      },
    };
  }

  /** The chunks of a job, in the order they were accepted. */
  async read(tenant: string | undefined, jobId: string): Promise<DecodedChunk[]> {
    const bytes = await readFile(this.path(tenant, jobId));
    const chunks: DecodedChunk[] = [];
    for (let at = 0; at < bytes.length; ) {
      const headerLength = bytes.readUInt32LE(at);
      const header = JSON.parse(bytes.subarray(at + 4, at + 4 + headerLength).toString("utf8")) as ChunkHeader;
      at += 4 + headerLength;
      const tensors: { name: string; tensor: HostTensor }[] = header.tensors.map((t) => {
        if (!isTensorType(t.type)) throw new Error(`a chunk of job ${jobId} holds an unknown type ${t.type}`);
        const data = new Uint8Array(bytes.subarray(at, at + t.bytes)); // its own aligned copy
        at += t.bytes;
        return { name: t.name, tensor: { type: t.type, dims: t.dims, data } };
      });
      const labels = tensors.find((t) => t.name === "\u0000labels")?.tensor;
      chunks.push({ inputs: tensors.filter((t) => t.name !== "\u0000labels"), labels, validation: header.validation });
    }
    return chunks;
  }

  async remove(tenant: string | undefined, jobId: string): Promise<void> {
    await rm(this.path(tenant, jobId), { force: true });
  }

  /**
   * Deletes every job's data but that of the jobs in `keep` (the open ones): at start, what a job that ended
   * just before a crash (its delete not yet done) or one that could not continue left behind. Returns how many.
   */
  async sweep(keep: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const owner of await readdir(this.dir).catch(() => [] as string[])) {
      for (const file of await readdir(join(this.dir, owner)).catch(() => [] as string[])) {
        if (!file.endsWith(".chunks") || keep.has(file.slice(0, -".chunks".length))) continue;
        await rm(join(this.dir, owner, file), { force: true });
        removed++;
      }
    }
    return removed;
  }
}

function encodeChunk(chunk: DecodedChunk): Buffer {
  const tensors = [...chunk.inputs, ...(chunk.labels ? [{ name: "\u0000labels", tensor: chunk.labels }] : [])];
  const header: ChunkHeader = {
    validation: chunk.validation,
    tensors: tensors.map((t) => ({ name: t.name, type: t.tensor.type, dims: t.tensor.dims, bytes: t.tensor.data.byteLength })),
  };
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([length, json, ...tensors.map((t) => Buffer.from(t.tensor.data.buffer, t.tensor.data.byteOffset, t.tensor.data.byteLength))]);
}
