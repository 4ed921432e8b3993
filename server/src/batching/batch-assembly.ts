import { Code, ServerError } from "../common/errors.js";
import type { HostTensor, TensorType, TransferTensor } from "../runtime/index.js";
import type { BatchRequest } from "./batch-request.js";

export interface AssemblyOptions {
  /** For messages, e.g. "mnist-cnn:1". */
  readonly label: string;
  /** 0: the model does not batch; a request's tensors go to the session as they are. */
  readonly maxBatchSize: number;
  readonly inputs: readonly { readonly name: string; readonly type: TensorType }[];
  readonly outputNames: readonly string[];
  /** Buffers kept per input for reuse: about two per executor. */
  readonly poolSize: number;
}

/** Largest buffer kept for a batch input, so one huge request does not pin memory in the pool. */
const MAX_POOLED_BYTES = 64 << 20;

/**
 * Turns the requests of a batch into the session's feeds and its outputs back into each request's rows.
 * Batch input buffers travel to a worker and come back with the results; reusing them spares the main
 * thread an allocation (and its GC) per batch and input.
 */
export class BatchAssembly {
  private readonly pools: ArrayBuffer[][];

  constructor(private readonly options: AssemblyOptions) {
    this.pools = options.inputs.map(() => []);
  }

  /** The batch's feeds: each input's rows, request after request, in one transferable buffer. */
  assemble(requests: readonly BatchRequest[], rows: number): TransferTensor[] {
    return this.options.inputs.map((input, i) => {
      let bytes = 0;
      for (const request of requests) bytes += request.inputs[i].data.byteLength;
      // The one copy on the way in: request bytes (views into gRPC frames) into a transferable buffer.
      const buffer = this.take(i, bytes, rows);
      const target = new Uint8Array(buffer);
      let at = 0;
      for (const request of requests) {
        const data = request.inputs[i].data;
        target.set(data, at);
        at += data.byteLength;
      }
      const first = requests[0].inputs[i];
      const dims = this.options.maxBatchSize > 0 ? [rows, ...first.dims.slice(1)] : [...first.dims];
      return { name: input.name, type: input.type, dims, buffer, byteOffset: 0, byteLength: bytes };
    });
  }

  /** The outputs any request of the batch asked for, in the model's order; [] when one asked for all. */
  outputsFor(requests: readonly BatchRequest[]): string[] {
    if (requests.some((request) => request.outputs.length === 0)) return [];
    const names = new Set<string>();
    for (const request of requests) for (const name of request.outputs) names.add(name);
    return this.options.outputNames.filter((name) => names.has(name));
  }

  /** Each output's shape for one row, made once per batch: most requests are one row. */
  oneRowDims(outputs: readonly TransferTensor[]): (readonly number[])[] {
    return outputs.map((o) => [1, ...o.dims.slice(1)]);
  }

  /** One request's outputs: views of its rows (from `rowOffset`) in the batch's outputs, no copy. */
  split(outputs: readonly TransferTensor[], request: BatchRequest, rowOffset: number, batchRows: number, whole: boolean, oneRow: readonly (readonly number[])[]): HostTensor[] {
    const { label, maxBatchSize, outputNames } = this.options;
    const names = request.outputs.length ? request.outputs : outputNames;
    return names.map((name) => {
      const index = outputs.findIndex((o) => o.name === name);
      const out = outputs[index];
      if (!out) throw new ServerError(Code.INTERNAL, `${label}: the model did not produce output "${name}"`);
      if (whole || maxBatchSize === 0) {
        return { type: out.type, dims: out.dims, data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
      }
      if (out.dims[0] !== batchRows) {
        throw new ServerError(Code.INTERNAL, `${label}: output "${name}" has ${out.dims[0]} rows for a batch of ${batchRows}; set max_batch_size to 0 for a model whose outputs are not batched`);
      }
      const rowBytes = batchRows === 0 ? 0 : out.byteLength / batchRows;
      const data = new Uint8Array(out.buffer, out.byteOffset + rowOffset * rowBytes, request.rows * rowBytes);
      return { type: out.type, dims: request.rows === 1 ? oneRow[index]! : [request.rows, ...out.dims.slice(1)], data };
    });
  }

  /** Input buffers back from a run (or a failed one), for the next batch. */
  giveBack(buffers: readonly ArrayBuffer[] | undefined): void {
    buffers?.forEach((buffer, input) => {
      const pool = this.pools[input];
      if (pool && pool.length < this.options.poolSize) pool.push(buffer);
    });
  }

  private take(input: number, bytes: number, rows: number): ArrayBuffer {
    const pool = this.pools[input];
    for (let i = pool.length - 1; i >= 0; i--) {
      if (pool[i].byteLength >= bytes) return pool.splice(i, 1)[0];
    }
    // Room for a full batch of rows this size, so the buffer fits the batches that follow.
    const { maxBatchSize } = this.options;
    const full = maxBatchSize > 0 ? (bytes / rows) * maxBatchSize : bytes;
    return new ArrayBuffer(Math.max(bytes, Math.min(full, MAX_POOLED_BYTES)));
  }
}
