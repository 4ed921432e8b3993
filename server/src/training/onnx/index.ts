export { createGraphBuilder, tensorProto, DEFAULT_OPSET } from "./graph-builder.js";
export type { GraphBuilder, ConstTensor, Dim, AttributeValue, FloatAttr, ModelOptions, TypedData } from "./graph-builder.js";
export type { ElementType } from "./element-type.js";
export { onnxDataType } from "./element-type.js";
export { encodeModel, decodeModel, readModelFile, writeModelFile } from "./model-file.js";
