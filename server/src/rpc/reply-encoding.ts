// Replies of the inference hot path encoded straight from the batch's output views into one buffer of the
// exact size: no message objects, no BigInt shapes, no growing writer. The layouts are those of
// proto/aiaas/v1 (PredictResponse, PredictStreamResponse) and proto/inference (ModelInferResponse,
// ModelStreamInferResponse); test/reply-encoding.test.ts decodes every one with the generated decoders.
import type { HostTensor } from "../runtime/index.js";

/** One output of a reply: its name and a view of its rows. */
export interface ReplyTensor {
  readonly name: string;
  readonly tensor: HostTensor;
}

/** What a prediction answers, before any encoding. */
export interface PredictReply {
  readonly model: string;
  readonly version: string;
  readonly id: string;
  readonly outputs: readonly ReplyTensor[];
}

const VARINT = 0;
const LEN = 2;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field holding `length` bytes (its tag is one byte: field numbers < 16). */
const lenField = (length: number): number => 1 + varintSize(length) + length;

/** The one-pass writer: sizes were computed first, so it never grows. */
class Writer {
  readonly buffer: Buffer;
  private at = 0;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    const b = this.buffer;
    while (n >= 0x80) {
      b[this.at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    b[this.at++] = n;
  }

  tag(field: number, wire: number): void {
    this.buffer[this.at++] = (field << 3) | wire;
  }

  header(field: number, length: number): void {
    this.tag(field, LEN);
    this.varint(length);
  }

  string(field: number, value: string, bytes: number): void {
    if (bytes === 0) return;
    this.header(field, bytes);
    this.at += this.buffer.write(value, this.at, bytes, "utf8");
  }

  /** A bytes field, left out when empty (proto3's default) unless `always`. */
  bytes(field: number, value: Uint8Array, always = false): void {
    if (value.byteLength === 0 && !always) return;
    this.header(field, value.byteLength);
    this.buffer.set(value, this.at);
    this.at += value.byteLength;
  }

  /** A packed repeated int64 of non-negative dims. */
  dims(field: number, dims: readonly number[], packed: number): void {
    if (dims.length === 0) return;
    this.header(field, packed);
    for (const d of dims) this.varint(d);
  }

  done(): Buffer {
    if (this.at !== this.buffer.length) throw new Error(`reply encoding wrote ${this.at} of ${this.buffer.length} bytes`);
    return this.buffer;
  }
}

const packedSize = (dims: readonly number[]): number => {
  let n = 0;
  for (const d of dims) n += varintSize(d);
  return n;
};
const stringField = (bytes: number): number => (bytes === 0 ? 0 : lenField(bytes));
const dimsField = (packed: number): number => (packed === 0 ? 0 : lenField(packed));

/** Sizes of the parts every reply shares: its header strings and each output's name and shape. */
interface Plan {
  readonly model: number;
  readonly version: number;
  readonly id: number;
  readonly names: number[];
  readonly packed: number[];
}

function plan(reply: PredictReply): Plan {
  return {
    model: Buffer.byteLength(reply.model),
    version: Buffer.byteLength(reply.version),
    id: Buffer.byteLength(reply.id),
    names: reply.outputs.map((o) => Buffer.byteLength(o.name)),
    packed: reply.outputs.map((o) => packedSize(o.tensor.dims)),
  };
}

// --- aiaas.v1 ---------------------------------------------------------------------------------------------

/** aiaas.v1.Tensor with raw_data: name 1, datatype 2, shape 3 (packed), raw_data 4. */
function tensorSize(p: Plan, i: number, datatype: number, data: Uint8Array): number {
  return stringField(p.names[i]!) + (datatype === 0 ? 0 : 1 + varintSize(datatype)) + dimsField(p.packed[i]!) + (data.byteLength === 0 ? 0 : lenField(data.byteLength));
}

function predictResponseSize(reply: PredictReply, p: Plan, datatypes: readonly number[]): number {
  let n = stringField(p.model) + stringField(p.version) + stringField(p.id);
  reply.outputs.forEach((o, i) => (n += lenField(tensorSize(p, i, datatypes[i]!, o.tensor.data))));
  return n;
}

function writePredictResponse(w: Writer, reply: PredictReply, p: Plan, datatypes: readonly number[]): void {
  w.string(1, reply.model, p.model);
  w.string(2, reply.version, p.version);
  w.string(3, reply.id, p.id);
  reply.outputs.forEach((o, i) => {
    const datatype = datatypes[i]!;
    w.header(4, tensorSize(p, i, datatype, o.tensor.data));
    w.string(1, o.name, p.names[i]!);
    if (datatype !== 0) {
      w.tag(2, VARINT);
      w.varint(datatype);
    }
    w.dims(3, o.tensor.dims, p.packed[i]!);
    w.bytes(4, o.tensor.data);
  });
}

/**
 * aiaas.v1.PredictResponse with every output in raw_data; `datatypes` are the outputs' DataType numbers.
 * `wrapped`: as the `response` (field 1) of a PredictStreamResponse.
 */
export function encodePredictResponse(reply: PredictReply, datatypes: readonly number[], wrapped = false): Buffer {
  const p = plan(reply);
  const size = predictResponseSize(reply, p, datatypes);
  const w = new Writer(wrapped ? lenField(size) : size);
  if (wrapped) w.header(1, size);
  writePredictResponse(w, reply, p, datatypes);
  return w.done();
}

// --- inference (Open Inference Protocol) --------------------------------------------------------------------

/** InferOutputTensor: name 1, datatype 2 (a string), shape 3 (packed). */
const outputSize = (p: Plan, i: number, datatype: number): number => stringField(p.names[i]!) + stringField(datatype) + dimsField(p.packed[i]!);

function modelInferResponseSize(reply: PredictReply, p: Plan, datatypeBytes: readonly number[]): number {
  let n = stringField(p.model) + stringField(p.version) + stringField(p.id);
  reply.outputs.forEach((o, i) => (n += lenField(outputSize(p, i, datatypeBytes[i]!)) + lenField(o.tensor.data.byteLength)));
  return n;
}

/**
 * inference.ModelInferResponse with the outputs in raw_output_contents; `datatypes` are the outputs' Triton
 * datatype names ("FP32"). `wrapped`: as the `infer_response` (field 2) of a ModelStreamInferResponse.
 */
export function encodeModelInferResponse(reply: PredictReply, datatypes: readonly string[], wrapped = false): Buffer {
  const p = plan(reply);
  const datatypeBytes = datatypes.map((d) => Buffer.byteLength(d));
  const size = modelInferResponseSize(reply, p, datatypeBytes);
  const w = new Writer(wrapped ? lenField(size) : size);
  if (wrapped) w.header(2, size);
  w.string(1, reply.model, p.model);
  w.string(2, reply.version, p.version);
  w.string(3, reply.id, p.id);
  reply.outputs.forEach((o, i) => {
    w.header(5, outputSize(p, i, datatypeBytes[i]!));
    w.string(1, o.name, p.names[i]!);
    w.string(2, datatypes[i]!, datatypeBytes[i]!);
    w.dims(3, o.tensor.dims, p.packed[i]!);
  });
  // Every output has its entry, even an empty one: the entries pair with `outputs` by position.
  for (const o of reply.outputs) w.bytes(6, o.tensor.data, true);
  return w.done();
}
