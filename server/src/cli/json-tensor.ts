import { Tensor, type TensorType } from "@aiaas/sdk";

/**
 * Tensors as JSON, in the shape grpcurl and buf curl use for aiaas.v1.Tensor:
 * {"datatype": "DATA_TYPE_FP32", "shape": [1, 4], "fp32_data": [0, 0.5, 1, 0]} (camelCase keys work too;
 * "raw_data" takes base64).
 */
export interface JsonTensor {
  readonly name?: string;
  readonly datatype: string;
  readonly shape: ReadonlyArray<number | string>;
  readonly [field: string]: unknown;
}

const TYPES: Record<string, TensorType> = {
  DATA_TYPE_BOOL: "bool", DATA_TYPE_UINT8: "uint8", DATA_TYPE_UINT16: "uint16", DATA_TYPE_UINT32: "uint32",
  DATA_TYPE_UINT64: "uint64", DATA_TYPE_INT8: "int8", DATA_TYPE_INT16: "int16", DATA_TYPE_INT32: "int32",
  DATA_TYPE_INT64: "int64", DATA_TYPE_FP16: "float16", DATA_TYPE_FP32: "float32", DATA_TYPE_FP64: "float64",
};
const NAMES = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k])) as Record<TensorType, string>;

const FIELD: Record<TensorType, string> = {
  bool: "bool_data", uint8: "uint32_data", uint16: "uint32_data", uint32: "uint32_data", uint64: "uint64_data",
  int8: "int32_data", int16: "int32_data", int32: "int32_data", int64: "int64_data", float16: "fp32_data",
  float32: "fp32_data", float64: "fp64_data",
};
const camel = (snake: string): string => snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Reads one JSON tensor; throws an Error that says what is wrong with the file's content. */
export function tensorFromJson(json: unknown, where: string): Tensor {
  if (typeof json !== "object" || json === null) throw new Error(`${where}: expected a JSON object with datatype, shape and data`);
  const t = json as JsonTensor;
  const type = TYPES[String(t.datatype).toUpperCase().startsWith("DATA_TYPE_") ? String(t.datatype).toUpperCase() : `DATA_TYPE_${String(t.datatype).toUpperCase()}`];
  if (!type) throw new Error(`${where}: unknown datatype ${JSON.stringify(t.datatype)} (e.g. "DATA_TYPE_FP32")`);
  if (!Array.isArray(t.shape)) throw new Error(`${where}: "shape" must be a list of dimensions`);
  const shape = t.shape.map(Number);
  const raw = t.raw_data ?? t.rawData;
  if (typeof raw === "string") {
    const bytes = Buffer.from(raw, "base64");
    const copy = new Uint8Array(bytes); // own, aligned buffer
    return Tensor[type](shape, viewAs(type, copy.buffer) as never);
  }
  const field = FIELD[type];
  const values = (t[field] ?? t[camel(field)]) as unknown[] | undefined;
  if (!Array.isArray(values)) throw new Error(`${where}: a ${NAMES[type]} tensor needs its elements in "${field}" (or "raw_data" as base64)`);
  if (type === "float16") throw new Error(`${where}: FP16 from JSON numbers is not supported by the CLI; use raw_data`);
  if (type === "int64" || type === "uint64") return Tensor[type](shape, values.map((v) => BigInt(v as string | number)));
  return Tensor[type](shape, values as never);
}

function viewAs(type: TensorType, buffer: ArrayBufferLike): ArrayBufferView {
  switch (type) {
    case "float32": return new Float32Array(buffer);
    case "float64": return new Float64Array(buffer);
    case "float16": case "uint16": return new Uint16Array(buffer);
    case "int8": return new Int8Array(buffer);
    case "int16": return new Int16Array(buffer);
    case "int32": return new Int32Array(buffer);
    case "int64": return new BigInt64Array(buffer);
    case "uint32": return new Uint32Array(buffer);
    case "uint64": return new BigUint64Array(buffer);
    default: return new Uint8Array(buffer);
  }
}

/** A tensor as grpcurl prints one (protojson: camelCase fields, 64-bit integers as strings). */
export function tensorToJson(name: string, tensor: Tensor): Record<string, unknown> {
  const field = camel(FIELD[tensor.type]);
  const values = Array.from(tensor.data as ArrayLike<number | bigint>, (v) =>
    typeof v === "bigint" ? v.toString() : tensor.type === "bool" ? v !== 0 : v,
  );
  return { name, datatype: NAMES[tensor.type], shape: tensor.shape.map(String), [field]: values };
}

/**
 * The tensor for input `name` in a file that holds either one JSON tensor or a whole request as grpcurl sends
 * it (`{"model": …, "inputs": [{"name": "image", …}]}`: the input of that name, or its only input).
 */
export function inputFromJson(json: unknown, name: string, where: string): Tensor {
  const inputs = (json as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return tensorFromJson(json, where);
  const named = inputs.find((i) => (i as JsonTensor | null)?.name === name) ?? (inputs.length === 1 ? inputs[0] : undefined);
  if (named === undefined) {
    const names = inputs.map((i) => JSON.stringify((i as JsonTensor | null)?.name)).join(", ");
    throw new Error(`${where}: the request's inputs (${names}) have none named "${name}"`);
  }
  return tensorFromJson(named, where);
}
