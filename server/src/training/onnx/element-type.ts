import { TensorProto_DataType } from "onnx-buf";

/** ONNX element types the IR builds tensors of, by their ORT type names. */
export type ElementType =
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

const toOnnx: Record<ElementType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  float64: TensorProto_DataType.DOUBLE,
  int8: TensorProto_DataType.INT8,
  int16: TensorProto_DataType.INT16,
  int32: TensorProto_DataType.INT32,
  int64: TensorProto_DataType.INT64,
  uint8: TensorProto_DataType.UINT8,
  uint16: TensorProto_DataType.UINT16,
  uint32: TensorProto_DataType.UINT32,
  uint64: TensorProto_DataType.UINT64,
  bool: TensorProto_DataType.BOOL,
};

export function onnxDataType(type: ElementType): TensorProto_DataType {
  return toOnnx[type];
}
