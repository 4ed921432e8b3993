import type { ElementType } from "../onnx/element-type.js";
import type { TypedData } from "../onnx/graph-builder.js";
import { allocate } from "../onnx/tensor-data.js";

/** A growable column of fixed-size rows of one element type, with random access for batching. */
export class RowStore {
  private data: TypedData;
  rows = 0;

  constructor(
    readonly type: ElementType,
    /** Elements per row. */
    readonly width: number,
  ) {
    this.data = allocate(type, Math.max(width, 1) * 64);
  }

  get bytes(): number {
    return this.rows * this.width * this.data.BYTES_PER_ELEMENT;
  }

  append(values: TypedData, rows: number): void {
    const need = (this.rows + rows) * this.width;
    if (need > this.data.length) {
      let size = this.data.length;
      while (size < need) size *= 2;
      const next = allocate(this.type, size);
      (next as Float32Array).set(this.data as Float32Array);
      this.data = next;
    }
    (this.data as Float32Array).set(values as Float32Array, this.rows * this.width);
    this.rows += rows;
  }

  /** Copies the given rows, in order, into a new array. */
  gather(rows: ArrayLike<number>): TypedData {
    const out = allocate(this.type, rows.length * this.width);
    const w = this.width;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      (out as Float32Array).set((this.data as Float32Array).subarray(r * w, r * w + w), i * w);
    }
    return out;
  }

  /** Releases the memory (the job's data lives only as long as the job). */
  clear(): void {
    this.data = allocate(this.type, 0);
    this.rows = 0;
  }
}
