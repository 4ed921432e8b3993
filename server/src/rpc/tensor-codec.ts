import { DataType, Tensor as ProtoTensor, TensorEncoding, type Tensor } from "@aiaas/sdk/gen";
import { invalidArgument } from "../common/errors.js";
import type { NamedTensor } from "../batching/index.js";
import { ELEMENT_SIZE, typedView, type HostTensor, type TensorType } from "../runtime/index.js";
import { fromHalf, toHalf } from "./float16.js";

const TO_TYPE: Partial<Record<DataType, TensorType>> = {
  [DataType.DATA_TYPE_BOOL]: "bool",
  [DataType.DATA_TYPE_UINT8]: "uint8",
  [DataType.DATA_TYPE_UINT16]: "uint16",
  [DataType.DATA_TYPE_UINT32]: "uint32",
  [DataType.DATA_TYPE_UINT64]: "uint64",
  [DataType.DATA_TYPE_INT8]: "int8",
  [DataType.DATA_TYPE_INT16]: "int16",
  [DataType.DATA_TYPE_INT32]: "int32",
  [DataType.DATA_TYPE_INT64]: "int64",
  [DataType.DATA_TYPE_FP16]: "float16",
  [DataType.DATA_TYPE_FP32]: "float32",
  [DataType.DATA_TYPE_FP64]: "float64",
};

const TO_DATATYPE = Object.fromEntries(Object.entries(TO_TYPE).map(([k, v]) => [v, Number(k)])) as Record<TensorType, DataType>;

export function toDataType(type: TensorType): DataType {
  return TO_DATATYPE[type];
}

/** The typed field that may carry each type's elements. */
const TYPED_FIELD: Record<TensorType, keyof Tensor> = {
  bool: "boolData",
  uint8: "uint32Data",
  uint16: "uint32Data",
  uint32: "uint32Data",
  uint64: "uint64Data",
  int8: "int32Data",
  int16: "int32Data",
  int32: "int32Data",
  int64: "int64Data",
  float16: "fp32Data",
  float32: "fp32Data",
  float64: "fp64Data",
};

const TYPED_FIELDS = ["fp32Data", "fp64Data", "int32Data", "int64Data", "uint32Data", "uint64Data", "boolData"] as const;

const PROTO_FIELD: Record<string, string> = {
  fp32Data: "fp32_data", fp64Data: "fp64_data", int32Data: "int32_data", int64Data: "int64_data",
  uint32Data: "uint32_data", uint64Data: "uint64_data", boolData: "bool_data",
};

/** Largest dimension accepted; shapes beyond it are malformed, not just large. */
const MAX_DIM = 2 ** 31 - 1;
const MAX_DIM_BIG = BigInt(MAX_DIM);

export interface DecodeLimits {
  /** Upper bound on bytes one tensor may describe (the max message size): a shape asking for more is rejected
   * before anything is allocated. */
  readonly maxTensorBytes: number;
}

export interface DecodedInputs {
  readonly tensors: NamedTensor[];
  /** Whether the inputs came in the typed fields (the reply then mirrors that by default). */
  readonly typed: boolean;
}

/** Wire tensors to host tensors. raw_data stays a view into the received frame; typed fields are packed once. */
export function decodeInputs(label: string, tensors: readonly Tensor[], limits: DecodeLimits): DecodedInputs {
  let typed = false;
  const out = tensors.map((t, index) => {
    const name = t.name || `#${index}`;
    if (!t.name) throw invalidArgument(`${label}: input #${index} has no name`);
    const type = TO_TYPE[t.datatype];
    if (!type) throw invalidArgument(`${label}: input "${name}" has no valid datatype (got ${DataType[t.datatype] ?? t.datatype})`);
    let elements = 1;
    const dims = t.shape.map((d, axis) => {
      if (d < 0n || d > MAX_DIM_BIG) throw invalidArgument(`${label}: input "${name}" has dimension ${axis} = ${d}; dimensions must be from 0 to ${MAX_DIM}`);
      elements *= Number(d);
      return Number(d);
    });
    const bytes = elements * ELEMENT_SIZE[type];
    if (bytes > limits.maxTensorBytes) {
      throw invalidArgument(`${label}: input "${name}" has shape [${dims.join(", ")}], ${elements} elements (${bytes} bytes), more than the ${limits.maxTensorBytes} bytes a request may carry`);
    }
    // The common case, raw_data only, without allocating.
    if (typedCount(t) === 0) return { name, type, dims, data: t.rawData };
    const present = TYPED_FIELDS.filter((f) => (t[f] as unknown[]).length > 0);
    if (t.rawData.length > 0) throw invalidArgument(`${label}: input "${name}" sets both raw_data and ${PROTO_FIELD[present[0]]}; use one`);
    const field = TYPED_FIELD[type];
    if (present.length > 1 || present[0] !== field) {
      throw invalidArgument(`${label}: input "${name}" is ${DataType[t.datatype].replace("DATA_TYPE_", "")}; put its elements in ${PROTO_FIELD[field]}, not ${present.map((f) => PROTO_FIELD[f]).join(", ")}`);
    }
    const values = t[field] as ArrayLike<number | bigint | boolean>;
    if (values.length !== elements) {
      throw invalidArgument(`${label}: input "${name}" has ${values.length} values in ${PROTO_FIELD[field]}, its shape [${dims.join(", ")}] needs ${elements}`);
    }
    typed = true;
    return { name, type, dims, data: pack(type, values) };
  });
  return { tensors: out, typed };
}

function typedCount(t: Tensor): number {
  return t.fp32Data.length + t.fp64Data.length + t.int32Data.length + t.int64Data.length + t.uint32Data.length + t.uint64Data.length + t.boolData.length;
}

function pack(type: TensorType, values: ArrayLike<number | bigint | boolean>): Uint8Array {
  const buffer = new ArrayBuffer(values.length * ELEMENT_SIZE[type]);
  const view = typedView(type, buffer, 0, buffer.byteLength);
  if (type === "float16") {
    for (let i = 0; i < values.length; i++) (view as Uint16Array)[i] = toHalf(values[i] as number);
  } else if (type === "bool") {
    for (let i = 0; i < values.length; i++) (view as Uint8Array)[i] = values[i] ? 1 : 0;
  } else {
    // Typed-array assignment wraps out-of-range integers; reject them instead of silently changing values.
    const [min, max] = RANGE[type] ?? [-Infinity, Infinity];
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (v < min || v > max) throw invalidArgument(`value ${v} at index ${i} does not fit ${type}`);
      (view as unknown as { [k: number]: number | bigint })[i] = values[i] as number | bigint;
    }
  }
  return new Uint8Array(buffer);
}

const RANGE: Partial<Record<TensorType, [number, number]>> = {
  uint8: [0, 255], uint16: [0, 65535], int8: [-128, 127], int16: [-32768, 32767],
};

export function useTypedOutputs(encoding: TensorEncoding, inputsTyped: boolean): boolean {
  if (encoding === TensorEncoding.TENSOR_ENCODING_TYPED) return true;
  if (encoding === TensorEncoding.TENSOR_ENCODING_RAW) return false;
  return inputsTyped;
}

/** Host tensors to wire tensors: raw_data is the output view itself (the encoder copies it once into the frame). */
export function encodeOutput(name: string, tensor: HostTensor, typed: boolean): Tensor {
  const wire = ProtoTensor.create();
  wire.name = name;
  wire.datatype = toDataType(tensor.type);
  wire.shape = tensor.dims.map((d) => BigInt(d));
  if (!typed) {
    wire.rawData = tensor.data;
    return wire;
  }
  const { data, type } = tensor;
  // ORT's output buffers are aligned per element; copy only if a view is not.
  const aligned = data.byteOffset % ELEMENT_SIZE[type] === 0 ? data : new Uint8Array(data);
  const view = typedView(type, aligned.buffer, aligned.byteOffset, aligned.byteLength);
  let values: unknown[];
  if (type === "float16") values = Array.from(view as Uint16Array, fromHalf);
  else if (type === "bool") values = Array.from(view as Uint8Array, (v) => v !== 0);
  else values = Array.from(view as ArrayLike<number | bigint>);
  (wire as unknown as Record<string, unknown>)[TYPED_FIELD[type]] = values;
  return wire;
}
