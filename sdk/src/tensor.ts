import { DataType, type Tensor as WireTensor } from "./gen/aiaas/v1/tensor.js";
import { AiaasError, Code } from "./errors.js";

/** Element types, by the names ONNX Runtime uses. */
export type TensorType =
  | "float32"
  | "float16"
  | "float64"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "bool";

/** The typed array that holds each type's elements. float16 elements are IEEE 754 half-precision bits. */
export interface TensorDataMap {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

/**
 * A dense, row-major tensor: its element type, shape and a typed array of exactly product(shape) elements.
 * Tensors built from a typed array keep that array (no copy); tensors read from a response view the bytes
 * of the response where they are aligned (no copy) and copy them once where they are not.
 */
export interface Tensor<T extends TensorType = TensorType> {
  readonly type: T;
  readonly shape: readonly number[];
  readonly data: TensorDataMap[T];
}

const ELEMENT_SIZE: Record<TensorType, number> = {
  float32: 4, float16: 2, float64: 8, int8: 1, int16: 2, int32: 4, int64: 8, uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1,
};

const CTOR: { [T in TensorType]: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorDataMap[T]; from(values: ArrayLike<never>): TensorDataMap[T] } } = {
  float32: Float32Array, float16: Uint16Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array,
} as never;

const TO_WIRE: Record<TensorType, DataType> = {
  float32: DataType.DATA_TYPE_FP32, float16: DataType.DATA_TYPE_FP16, float64: DataType.DATA_TYPE_FP64,
  int8: DataType.DATA_TYPE_INT8, int16: DataType.DATA_TYPE_INT16, int32: DataType.DATA_TYPE_INT32, int64: DataType.DATA_TYPE_INT64,
  uint8: DataType.DATA_TYPE_UINT8, uint16: DataType.DATA_TYPE_UINT16, uint32: DataType.DATA_TYPE_UINT32, uint64: DataType.DATA_TYPE_UINT64,
  bool: DataType.DATA_TYPE_BOOL,
};
const FROM_WIRE = new Map(Object.entries(TO_WIRE).map(([k, v]) => [v, k as TensorType]));

/** The wire DataType of a tensor type. */
export function toWireDataType(type: TensorType): DataType {
  return TO_WIRE[type];
}

/** The tensor type of a wire DataType, or undefined for one the SDK does not know. */
export function fromWireDataType(datatype: DataType): TensorType | undefined {
  return FROM_WIRE.get(datatype);
}

function checkShape(type: TensorType, shape: readonly number[], length: number): number[] {
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new AiaasError(Code.INVALID_ARGUMENT, `tensor shape [${shape.join(", ")}]: dimensions must be non-negative integers`);
    }
    count *= d;
  }
  if (count !== length) {
    throw new AiaasError(Code.INVALID_ARGUMENT, `${type} tensor of shape [${shape.join(", ")}] needs ${count} elements, got ${length}`);
  }
  return [...shape];
}

function make<T extends TensorType>(type: T, shape: readonly number[], data: TensorDataMap[T] | ArrayLike<unknown>): Tensor<T> {
  const Ctor = CTOR[type];
  const array = (ArrayBuffer.isView(data) && data instanceof (Ctor as unknown as Function) ? data : fromValues(type, data as ArrayLike<unknown>)) as TensorDataMap[T];
  return { type, shape: checkShape(type, shape, array.length), data: array };
}

function fromValues(type: TensorType, values: ArrayLike<unknown>): TensorDataMap[TensorType] {
  if (type === "int64") return BigInt64Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v));
  if (type === "uint64") return BigUint64Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v));
  if (type === "bool") return Uint8Array.from(values as ArrayLike<boolean | number>, (v) => (v ? 1 : 0));
  return (CTOR[type] as unknown as { from(v: ArrayLike<number>): TensorDataMap[TensorType] }).from(values as ArrayLike<number>);
}

/**
 * Factories for tensors: `Tensor.float32([n, 1, 28, 28], pixels)`. Each takes the shape and either its typed
 * array (kept as is) or plain values (copied once into one). The element count must match the shape.
 */
export const Tensor = {
  float32: (shape: readonly number[], data: Float32Array | readonly number[]): Tensor<"float32"> => make("float32", shape, data),
  /** Half precision, given as IEEE 754 binary16 bit patterns. */
  float16: (shape: readonly number[], data: Uint16Array): Tensor<"float16"> => make("float16", shape, data),
  float64: (shape: readonly number[], data: Float64Array | readonly number[]): Tensor<"float64"> => make("float64", shape, data),
  int8: (shape: readonly number[], data: Int8Array | readonly number[]): Tensor<"int8"> => make("int8", shape, data),
  int16: (shape: readonly number[], data: Int16Array | readonly number[]): Tensor<"int16"> => make("int16", shape, data),
  int32: (shape: readonly number[], data: Int32Array | readonly number[]): Tensor<"int32"> => make("int32", shape, data),
  /** int64 from a BigInt64Array, or from numbers / bigints (numbers must be safe integers). */
  int64: (shape: readonly number[], data: BigInt64Array | readonly (number | bigint)[]): Tensor<"int64"> => make("int64", shape, data),
  uint8: (shape: readonly number[], data: Uint8Array | readonly number[]): Tensor<"uint8"> => make("uint8", shape, data),
  uint16: (shape: readonly number[], data: Uint16Array | readonly number[]): Tensor<"uint16"> => make("uint16", shape, data),
  uint32: (shape: readonly number[], data: Uint32Array | readonly number[]): Tensor<"uint32"> => make("uint32", shape, data),
  uint64: (shape: readonly number[], data: BigUint64Array | readonly (number | bigint)[]): Tensor<"uint64"> => make("uint64", shape, data),
  /** Booleans as a Uint8Array of 0/1 or as plain booleans. */
  bool: (shape: readonly number[], data: Uint8Array | readonly boolean[]): Tensor<"bool"> => make("bool", shape, data),
} as const;

// The typed fields a raw tensor leaves empty: shared, never written (the encoder only reads them).
const NONE: never[] = [];

/**
 * A tensor as it goes on the wire: raw_data is a view of the tensor's own bytes (no copy). Written out field
 * by field in the generated order (a spread of defaults cost more than the encoding itself).
 */
export function tensorToWire(name: string, tensor: Tensor): WireTensor {
  const d = tensor.data;
  const shape = new Array<bigint>(tensor.shape.length);
  for (let i = 0; i < shape.length; i++) shape[i] = BigInt(tensor.shape[i]!);
  return {
    name,
    datatype: TO_WIRE[tensor.type],
    shape,
    rawData: d instanceof Uint8Array ? d : new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
    fp32Data: NONE,
    fp64Data: NONE,
    int32Data: NONE,
    int64Data: NONE,
    uint32Data: NONE,
    uint64Data: NONE,
    boolData: NONE,
  };
}

/** A wire tensor as a Tensor: a view of the received bytes where they are aligned, else one copy. */
export function tensorFromWire(wire: WireTensor): Tensor {
  const type = FROM_WIRE.get(wire.datatype);
  if (!type) throw new AiaasError(Code.INTERNAL, `output "${wire.name}" has a datatype this SDK does not know (${wire.datatype})`);
  const shape = wire.shape.map(Number);
  const size = ELEMENT_SIZE[type];
  let data: TensorDataMap[TensorType];
  if (wire.rawData.length > 0 || !hasTyped(wire)) {
    const raw = wire.rawData;
    // new Uint8Array(view) copies (Buffer#slice would not): one copy, only when the bytes are misaligned.
    const aligned = raw.byteOffset % size === 0 ? raw : new Uint8Array(raw);
    data = new CTOR[type](aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
  } else {
    data = fromTyped(type, wire);
  }
  return { type, shape: checkShape(type, shape, data.length), data };
}

function hasTyped(w: WireTensor): boolean {
  return w.fp32Data.length + w.fp64Data.length + w.int32Data.length + w.int64Data.length + w.uint32Data.length + w.uint64Data.length + w.boolData.length > 0;
}

function fromTyped(type: TensorType, w: WireTensor): TensorDataMap[TensorType] {
  switch (type) {
    case "float32":
      return Float32Array.from(w.fp32Data);
    case "float64":
      return Float64Array.from(w.fp64Data);
    case "float16":
      throw new AiaasError(Code.INTERNAL, "FP16 outputs in typed fields are not supported by the SDK; ask for raw outputs");
    case "int64":
      return BigInt64Array.from(w.int64Data);
    case "uint64":
      return BigUint64Array.from(w.uint64Data);
    case "bool":
      return Uint8Array.from(w.boolData, (b) => (b ? 1 : 0));
    case "int8":
    case "int16":
    case "int32":
      return (CTOR[type] as unknown as { from(v: number[]): TensorDataMap[TensorType] }).from(w.int32Data);
    default:
      return (CTOR[type] as unknown as { from(v: number[]): TensorDataMap[TensorType] }).from(w.uint32Data);
  }
}
