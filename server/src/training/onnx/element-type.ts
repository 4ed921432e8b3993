import { TensorProto_DataType } from "onnx-buf";

import type { TensorType } from "../../runtime/index.js";

/** ONNX element types the IR builds tensors of, by their ORT type names (the SDK's TensorType). */
export type ElementType = TensorType;

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
