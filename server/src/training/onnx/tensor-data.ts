import { TensorProto_DataType, type TensorProto } from "onnx-buf";
import type { ConstTensor, TypedData } from "./graph-builder.js";
import type { ElementType } from "./element-type.js";

const fromOnnx = new Map<number, ElementType>([
  [TensorProto_DataType.FLOAT, "float32"],
  [TensorProto_DataType.FLOAT16, "float16"],
  [TensorProto_DataType.DOUBLE, "float64"],
  [TensorProto_DataType.INT8, "int8"],
  [TensorProto_DataType.INT16, "int16"],
  [TensorProto_DataType.INT32, "int32"],
  [TensorProto_DataType.INT64, "int64"],
  [TensorProto_DataType.UINT8, "uint8"],
  [TensorProto_DataType.UINT16, "uint16"],
  [TensorProto_DataType.UINT32, "uint32"],
  [TensorProto_DataType.UINT64, "uint64"],
  [TensorProto_DataType.BOOL, "bool"],
]);

/** The IR's element type for an ONNX data type, or undefined for types the engine does not handle (strings, bfloat16 …). */
export function elementTypeOf(dataType: number): ElementType | undefined {
  return fromOnnx.get(dataType);
}

const arrayOf: Record<ElementType, new (length: number) => TypedData> = {
  float32: Float32Array,
  float16: Uint16Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

export function allocate(type: ElementType, count: number): TypedData {
  return new arrayOf[type](count);
}

/** Decodes an initializer or attribute tensor, from raw_data or the typed repeated fields. */
export function decodeTensor(tensor: TensorProto): ConstTensor {
  const type = elementTypeOf(tensor.dataType);
  if (!type) throw new Error(`tensor "${tensor.name}": data type ${tensor.dataType} is not supported`);
  if (tensor.externalData.length > 0) {
    throw new Error(`tensor "${tensor.name}": external data is not supported; save the model with all tensors inside the file`);
  }
  const dims = tensor.dims.map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const data = allocate(type, count);
  if (tensor.rawData.length > 0) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (tensor.rawData.length !== bytes.length) {
      throw new Error(`tensor "${tensor.name}": raw_data has ${tensor.rawData.length} bytes, dims [${dims}] need ${bytes.length}`);
    }
    bytes.set(tensor.rawData);
  } else {
    const source: ArrayLike<number | bigint> =
      type === "float32"
        ? tensor.floatData
        : type === "float64"
          ? tensor.doubleData
          : type === "int64"
            ? tensor.int64Data
            : type === "uint64" || type === "uint32"
              ? tensor.uint64Data
              : tensor.int32Data; // int8/16/32, uint8/16, bool and float16 bits
    if (source.length !== count) {
      throw new Error(`tensor "${tensor.name}": holds ${source.length} values, dims [${dims}] need ${count}`);
    }
    for (let i = 0; i < count; i++) {
      (data as unknown as (number | bigint)[])[i] =
        data instanceof BigInt64Array || data instanceof BigUint64Array ? BigInt(source[i]) : Number(source[i]);
    }
  }
  return { type, dims, data };
}

/** Values of a small integer or float tensor as JS numbers (for shapes, axes, scalars). */
export function tensorNumbers(tensor: ConstTensor): number[] {
  return Array.from(tensor.data as ArrayLike<number | bigint>, Number);
}
