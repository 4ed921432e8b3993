import { invalidArgument, resourceExhausted } from "../../common/errors.js";
import { DATATYPE_NAME, ELEMENT_SIZE, typedView, type HostTensor } from "../../runtime/index.js";
import type { ElementType } from "../onnx/element-type.js";
import type { TypedData } from "../onnx/graph-builder.js";
import { RowStore } from "./row-store.js";

export interface ColumnSpec {
  readonly name: string;
  readonly type: ElementType;
  /** Dims of one row (without the batch dim); strings are dims the model leaves open, fixed by the first chunk. */
  readonly dims: readonly (number | string)[];
}

export interface DataSpec {
  readonly inputs: readonly ColumnSpec[];
  /** Classification: integer class ids below `classes`. Regression: float targets of `target` per row. */
  readonly labels: { readonly kind: "classes"; readonly classes: number } | { readonly kind: "target"; readonly target: ColumnSpec };
}

interface Split {
  readonly inputs: Map<string, RowStore>;
  readonly labels: RowStore;
}

/** The key the labels' row dims are kept under (no input can have this name). */
const LABELS = "\u0000labels";

/** As the wire contract names it (DATA_TYPE_FP32 …). */
const typeName = (t: ElementType): string => `DATA_TYPE_${DATATYPE_NAME[t]}`;

/** A chunk as the transport decoded it: named input tensors, the labels, and whether it is validation data. */
export interface DecodedChunk {
  readonly inputs: readonly { readonly name: string; readonly tensor: HostTensor }[];
  readonly labels: HostTensor | undefined;
  readonly validation: boolean;
}

/**
 * A job's uploaded examples, checked chunk by chunk as they arrive against the model's inputs and the task's
 * labels, and held in memory until the job ends. The first bad chunk is an INVALID_ARGUMENT naming the chunk
 * and the field; data beyond the job's byte limit is RESOURCE_EXHAUSTED.
 */
export class JobData {
  private readonly train: Split;
  private readonly validation: Split;
  private readonly rowDims = new Map<string, number[]>();
  private chunks = 0;

  constructor(
    readonly spec: DataSpec,
    private readonly maxBytes: number,
  ) {
    this.train = this.split();
    this.validation = this.split();
  }

  private split(): Split {
    const labels = this.spec.labels.kind === "classes" ? new RowStore("int64", 1) : new RowStore(this.spec.labels.target.type, 0);
    return { inputs: new Map(), labels };
  }

  get trainRows(): number {
    return this.train.labels.rows;
  }

  get validationRows(): number {
    return this.validation.labels.rows;
  }

  get bytes(): number {
    let total = 0;
    for (const s of [this.train, this.validation]) {
      total += s.labels.bytes;
      for (const c of s.inputs.values()) total += c.bytes;
    }
    return total;
  }

  /** Width (elements per row) of a column, fixing open dims from the chunk that first carries it. */
  private rowWidth(where: string, column: ColumnSpec, dims: readonly number[]): number {
    const fixed = this.rowDims.get(column.name);
    const rowDims = dims.slice(1);
    if (rowDims.length !== column.dims.length) {
      throw invalidArgument(`${where} has shape [${dims}]: the model takes [rows, ${column.dims.join(", ")}]`);
    }
    rowDims.forEach((d, i) => {
      const want = fixed ? fixed[i] : column.dims[i];
      if (typeof want === "number" && d !== want) {
        throw invalidArgument(`${where} has shape [${dims}]: dim ${i + 1} must be ${want} (the model takes [rows, ${(fixed ?? column.dims).join(", ")}])`);
      }
    });
    if (!fixed) this.rowDims.set(column.name, rowDims);
    return rowDims.reduce((a, b) => a * b, 1);
  }

  /**
   * Checks one chunk and appends its rows; nothing of a bad chunk is kept. `decode` turns the transport's
   * message into host tensors, naming the chunk in its errors.
   */
  add(decode: (label: string) => DecodedChunk): void {
    const label = `chunk ${this.chunks++}`;
    const chunk = decode(label);
    if (!chunk.labels) throw invalidArgument(`${label}: labels is missing`);
    const inputs = chunk.inputs.map((t) => ({ name: t.name, tensor: typed(t.tensor) }));
    const labels = { tensor: typed(chunk.labels) };
    const rows = labels.tensor.dims[0];
    if (labels.tensor.dims.length === 0 || rows === undefined) throw invalidArgument(`${label}: labels must have a rows dim`);
    if (rows === 0) throw invalidArgument(`${label}: holds no rows`);
    const seen = new Set<string>();
    const accepted: { store: (s: Split) => RowStore; data: TypedData; width: number }[] = [];
    for (const t of inputs) {
      const column = this.spec.inputs.find((c) => c.name === t.name);
      if (!column) throw invalidArgument(`${label}: inputs["${t.name}"] is not an input of the model (it takes ${this.spec.inputs.map((c) => `"${c.name}"`).join(", ")})`);
      if (seen.has(t.name)) throw invalidArgument(`${label}: inputs["${t.name}"] is given twice`);
      seen.add(t.name);
      const where = `${label}: inputs["${t.name}"]`;
      if (t.tensor.type !== column.type) throw invalidArgument(`${where} is ${typeName(t.tensor.type)}; the model takes ${typeName(column.type)}`);
      if (t.tensor.dims[0] !== rows) throw invalidArgument(`${where} has ${t.tensor.dims[0]} rows but labels has ${rows}`);
      const width = this.rowWidth(where, column, t.tensor.dims);
      checkFinite(where, t.tensor.data);
      accepted.push({ store: (s) => columnOf(s, t.name, column.type, width), data: t.tensor.data, width });
    }
    for (const c of this.spec.inputs) if (!seen.has(c.name)) throw invalidArgument(`${label}: inputs["${c.name}"] is missing`);

    const l = labels.tensor;
    let labelData: TypedData;
    if (this.spec.labels.kind === "classes") {
      if (l.type !== "int64" && l.type !== "int32") throw invalidArgument(`${label}: labels is ${typeName(l.type)}; class ids are DATA_TYPE_INT64 (or INT32)`);
      if (l.dims.length !== 1) throw invalidArgument(`${label}: labels has shape [${l.dims}]; class ids are one per row, shape [rows]`);
      const classes = this.spec.labels.classes;
      const ids = BigInt64Array.from(l.data as ArrayLike<number | bigint>, (v) => BigInt(v));
      for (let i = 0; i < ids.length; i++) {
        if (ids[i]! < 0n || ids[i]! >= BigInt(classes)) {
          throw invalidArgument(`${label}: labels[${i}] = ${ids[i]} is out of range: the model has ${classes} classes (0 to ${classes - 1})`);
        }
      }
      labelData = ids;
    } else {
      const target = this.spec.labels.target;
      if (l.type !== target.type) throw invalidArgument(`${label}: labels is ${typeName(l.type)}; regression targets are ${typeName(target.type)}`);
      this.rowWidth(`${label}: labels`, { ...target, name: LABELS }, l.dims);
      checkFinite(`${label}: labels`, l.data);
      labelData = l.data;
    }
    const bytes = accepted.reduce((s, a) => s + a.data.byteLength, 0) + labelData.byteLength;
    if (this.bytes + bytes > this.maxBytes) {
      throw resourceExhausted(`${label}: the job's data would exceed its limit of ${this.maxBytes} bytes (the server's --max-train-data-bytes)`);
    }
    const split = chunk.validation ? this.validation : this.train;
    for (const a of accepted) a.store(split).append(a.data, rows);
    const labelWidth = labelData.length / rows;
    if (split.labels.rows === 0 && split.labels.width !== labelWidth) {
      (split as { labels: RowStore }).labels = new RowStore(split.labels.type, labelWidth);
    }
    split.labels.append(labelData, rows);
  }

  /** The dims of one row of an input (or of the labels, by the name "labels"), as the data fixed them. */
  rowDimsOf(name: string): readonly number[] {
    if (name === LABELS) return this.spec.labels.kind === "classes" ? [] : (this.rowDims.get(LABELS) ?? []);
    const dims = this.rowDims.get(name);
    if (!dims) throw new Error(`no rows of "${name}" arrived`);
    return dims;
  }

  /** The stores of the training rows (after any validation split) and of the validation rows. */
  columns(which: "train" | "validation"): { inputs: ReadonlyMap<string, RowStore>; labels: RowStore } {
    const s = which === "train" ? this.train : this.validation;
    return { inputs: s.inputs, labels: s.labels };
  }

  /** Moves the given training rows to validation (a held-out fraction). */
  holdOut(rows: ArrayLike<number>): void {
    const keep: number[] = [];
    const out = new Set(Array.from(rows));
    for (let r = 0; r < this.trainRows; r++) if (!out.has(r)) keep.push(r);
    const move = (from: RowStore, keepRows: number[], moveRows: ArrayLike<number>): [RowStore, RowStore] => {
      const kept = new RowStore(from.type, from.width);
      kept.append(from.gather(keepRows), keepRows.length);
      const moved = new RowStore(from.type, from.width);
      moved.append(from.gather(moveRows), moveRows.length);
      return [kept, moved];
    };
    const [kl, ml] = move(this.train.labels, keep, rows);
    (this.train as { labels: RowStore }).labels = kl;
    (this.validation as { labels: RowStore }).labels = ml;
    for (const [name, store] of this.train.inputs) {
      const [k, m] = move(store, keep, rows);
      this.train.inputs.set(name, k);
      this.validation.inputs.set(name, m);
    }
  }

  clear(): void {
    for (const s of [this.train, this.validation]) {
      s.labels.clear();
      for (const c of s.inputs.values()) c.clear();
    }
  }
}

function columnOf(split: Split, name: string, type: ElementType, width: number): RowStore {
  let store = split.inputs.get(name);
  if (!store) {
    store = new RowStore(type, width);
    split.inputs.set(name, store);
  }
  return store;
}

/**
 * A decoded tensor as a typed array. A view when the bytes are aligned (the row store copies them anyway);
 * raw_data may sit unaligned in the received frame, and only then is it copied here.
 */
function typed(t: HostTensor): { type: ElementType; dims: readonly number[]; data: TypedData } {
  const bytes = t.data.byteOffset % ELEMENT_SIZE[t.type] === 0 ? t.data : new Uint8Array(t.data);
  return { type: t.type, dims: t.dims, data: typedView(t.type, bytes.buffer, bytes.byteOffset, bytes.byteLength) as TypedData };
}


function checkFinite(where: string, data: TypedData): void {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw invalidArgument(`${where}[${i}] is ${data[i]}: training data must be finite`);
  }
}
