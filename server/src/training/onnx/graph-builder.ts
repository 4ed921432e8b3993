import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import { onnxDataType, type ElementType } from "./element-type.js";

/** A dimension: a size, or a symbolic name for a dimension that varies (e.g. "batch"). */
export type Dim = number | string;

export type TypedData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** A constant tensor for an initializer. Bytes are stored little-endian in raw_data. */
export interface ConstTensor {
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TypedData;
}

export type AttributeValue = number | string | readonly number[] | readonly string[] | ConstTensor;

/** Attribute values that must be written as FLOAT(S) although they are integral in JS. */
export interface FloatAttr {
  readonly float: number | readonly number[];
}

export interface ModelOptions {
  readonly opset?: number;
  readonly producerName?: string;
  readonly docString?: string;
  readonly irVersion?: number;
}

/**
 * Builds one ONNX graph: inputs, outputs, initializers and nodes in topological order. Names are
 * checked for uniqueness as they are added, so a mistake fails where it is made.
 */
export interface GraphBuilder {
  input(name: string, type: ElementType, dims: readonly Dim[]): string;
  output(name: string, type: ElementType, dims: readonly Dim[]): string;
  initializer(name: string, tensor: ConstTensor): string;
  /** Adds a node; returns its output names (generated from the op type when not given). */
  node(
    opType: string,
    inputs: readonly string[],
    options?: {
      readonly outputs?: readonly string[] | number;
      readonly attrs?: Readonly<Record<string, AttributeValue | FloatAttr>>;
      readonly name?: string;
      readonly domain?: string;
    },
  ): string[];
  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string;
  build(graphName: string, options?: ModelOptions): ModelProto;
}

export const DEFAULT_OPSET = 17;

export function createGraphBuilder(): GraphBuilder {
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const initializers: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const names = new Set<string>();
  let counter = 0;

  const claim = (name: string): string => {
    if (names.has(name)) throw new Error(`ONNX graph: value name "${name}" is defined twice`);
    names.add(name);
    return name;
  };
  const fresh = (prefix: string): string => {
    let name: string;
    do name = `${prefix}_${counter++}`;
    while (names.has(name));
    return name;
  };

  return {
    input(name, type, dims) {
      inputs.push(valueInfo(claim(name), type, dims));
      return name;
    },
    output(name, type, dims) {
      outputs.push(valueInfo(name, type, dims));
      return name;
    },
    initializer(name, tensor) {
      initializers.push(tensorProto(claim(name), tensor));
      return name;
    },
    node(opType, nodeInputs, options = {}) {
      const spec = options.outputs ?? 1;
      const outs =
        typeof spec === "number"
          ? Array.from({ length: spec }, () => claim(fresh(opType.toLowerCase())))
          : spec.map((n) => (n === "" ? n : claim(n)));
      nodes.push(
        create(NodeProtoSchema, {
          opType,
          domain: options.domain ?? "",
          name: options.name ?? fresh(`${opType}_node`),
          input: [...nodeInputs],
          output: outs,
          attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
        }),
      );
      return outs;
    },
    fresh,
    build(graphName, options = {}) {
      return create(ModelProtoSchema, {
        irVersion: BigInt(options.irVersion ?? 8),
        producerName: options.producerName ?? "aiaas",
        docString: options.docString ?? "",
        opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(options.opset ?? DEFAULT_OPSET) })],
        graph: create(GraphProtoSchema, {
          name: graphName,
          input: inputs,
          output: outputs,
          initializer: initializers,
          node: nodes,
        }),
      });
    },
  };
}

export function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: {
          $typeName: "onnx.TypeProto.Tensor",
          elemType: onnxDataType(type),
          shape: {
            $typeName: "onnx.TensorShapeProto",
            dim: dims.map((d) =>
              create(
                TensorShapeProto_DimensionSchema,
                typeof d === "number"
                  ? { value: { case: "dimValue", value: BigInt(d) } }
                  : { value: { case: "dimParam", value: d } },
              ),
            ),
          },
        },
      },
    }),
  });
}

/** An initializer or attribute tensor; the bytes go to raw_data as the platform (little-endian) lays them. */
export function tensorProto(name: string, tensor: ConstTensor): TensorProto {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) {
    throw new Error(`ONNX tensor "${name}": dims [${tensor.dims}] hold ${count} elements, data has ${tensor.data.length}`);
  }
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return create(TensorProtoSchema, {
    name,
    dataType: onnxDataType(tensor.type),
    dims: tensor.dims.map((d) => BigInt(d)),
    rawData: new Uint8Array(bytes), // own copy: the caller may reuse its array
  });
}

export function attribute(name: string, value: AttributeValue | FloatAttr): AttributeProto {
  const base = { name };
  if (typeof value === "object" && value !== null && "float" in value) {
    const f = value.float;
    return typeof f === "number"
      ? create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.FLOAT, f })
      : create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.FLOATS, floats: [...f] });
  }
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.INT, i: BigInt(value) })
      : create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.FLOAT, f: value });
  }
  if (typeof value === "string") {
    return create(AttributeProtoSchema, {
      ...base,
      type: AttributeProto_AttributeType.STRING,
      s: new TextEncoder().encode(value),
    });
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === "string")) {
      return create(AttributeProtoSchema, {
        ...base,
        type: AttributeProto_AttributeType.STRINGS,
        strings: (value as readonly string[]).map((s) => new TextEncoder().encode(s)),
      });
    }
    const nums = value as readonly number[];
    return nums.every(Number.isInteger)
      ? create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.INTS, ints: nums.map(BigInt) })
      : create(AttributeProtoSchema, { ...base, type: AttributeProto_AttributeType.FLOATS, floats: [...nums] });
  }
  return create(AttributeProtoSchema, {
    ...base,
    type: AttributeProto_AttributeType.TENSOR,
    t: tensorProto(name, value as ConstTensor),
  });
}
