/** Element types the runtime moves, by ONNX Runtime's names (the SDK and the training IR use the same). */
export type TensorType = "bool" | "uint8" | "uint16" | "uint32" | "uint64" | "int8" | "int16" | "int32" | "int64" | "float16" | "float32" | "float64";

export const TENSOR_TYPES: readonly TensorType[] = [
  "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
];

export const ELEMENT_SIZE: Readonly<Record<TensorType, number>> = {
  bool: 1, uint8: 1, uint16: 2, uint32: 4, uint64: 8, int8: 1, int16: 2, int32: 4, int64: 8, float16: 2, float32: 4, float64: 8,
};

/** The Open Inference Protocol's datatype names (FP32, INT64, BOOL, ...), which aiaas.v1 uses too. */
export const DATATYPE_NAME: Readonly<Record<TensorType, string>> = {
  bool: "BOOL", uint8: "UINT8", uint16: "UINT16", uint32: "UINT32", uint64: "UINT64", int8: "INT8", int16: "INT16",
  int32: "INT32", int64: "INT64", float16: "FP16", float32: "FP32", float64: "FP64",
};

export function isTensorType(value: string): value is TensorType {
  return (TENSOR_TYPES as readonly string[]).includes(value);
}

/**
 * A tensor as the runtime moves it: its bytes (little-endian, row-major) and where they live. `data` may be
 * a view into a larger buffer (a request's frame, a batch's output); nothing here copies.
 */
export interface HostTensor {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/**
 * A tensor crossing a thread boundary (to a session or training worker and back): its buffer is transferred,
 * not copied, and is unusable on the sending side afterwards. The one tensor type of the worker protocol.
 */
export interface TransferTensor {
  readonly name: string;
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly buffer: ArrayBuffer;
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A transfer tensor over a typed array's memory (no copy). */
export function transferTensor(name: string, type: TensorType, dims: readonly number[], data: ArrayBufferView): TransferTensor {
  return { name, type, dims, buffer: data.buffer as ArrayBuffer, byteOffset: data.byteOffset, byteLength: data.byteLength };
}

/** The distinct buffers of some tensors: what a postMessage transfers. */
export function buffersOf(tensors: Iterable<TransferTensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of tensors) seen.add(t.buffer);
  return [...seen];
}

export type TypedArrayOf =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array;

/** The typed array ONNX Runtime expects for a type, as a view over the same bytes (offset must be aligned). */
export function typedView(type: TensorType, buffer: ArrayBufferLike, byteOffset: number, byteLength: number): TypedArrayOf {
  const n = byteLength / ELEMENT_SIZE[type];
  switch (type) {
    case "bool":
    case "uint8":
      return new Uint8Array(buffer, byteOffset, n);
    case "uint16":
    case "float16":
      return new Uint16Array(buffer, byteOffset, n);
    case "uint32":
      return new Uint32Array(buffer, byteOffset, n);
    case "uint64":
      return new BigUint64Array(buffer, byteOffset, n);
    case "int8":
      return new Int8Array(buffer, byteOffset, n);
    case "int16":
      return new Int16Array(buffer, byteOffset, n);
    case "int32":
      return new Int32Array(buffer, byteOffset, n);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, n);
    case "float32":
      return new Float32Array(buffer, byteOffset, n);
    case "float64":
      return new Float64Array(buffer, byteOffset, n);
  }
}
