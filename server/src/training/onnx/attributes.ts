import { AttributeProto_AttributeType } from "onnx-buf";
import type { ConstTensor } from "./graph-builder.js";
import type { GraphNode } from "./graph-types.js";
import { decodeTensor } from "./tensor-data.js";

/** Typed reads of a node's attributes, with the defaults the ONNX spec gives. */
export function attrInt(node: GraphNode, name: string, fallback: number): number {
  const a = node.attributes.find((x) => x.name === name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: GraphNode, name: string, fallback: number): number {
  const a = node.attributes.find((x) => x.name === name);
  return a ? a.f : fallback;
}

export function attrInts(node: GraphNode, name: string): number[] | undefined {
  const a = node.attributes.find((x) => x.name === name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(node: GraphNode, name: string, fallback: string): string {
  const a = node.attributes.find((x) => x.name === name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

export function attrStrings(node: GraphNode, name: string): string[] | undefined {
  const a = node.attributes.find((x) => x.name === name);
  return a ? a.strings.map((b) => new TextDecoder().decode(b)) : undefined;
}

export function attrTensor(node: GraphNode, name: string): ConstTensor | undefined {
  const a = node.attributes.find((x) => x.name === name);
  return a?.t ? decodeTensor(a.t) : undefined;
}

export function hasAttr(node: GraphNode, name: string): boolean {
  return node.attributes.some((x) => x.name === name);
}

/** The value a Constant node holds, whichever of its attribute forms it uses. */
export function constantNodeValue(node: GraphNode): ConstTensor | undefined {
  for (const a of node.attributes) {
    switch (a.name) {
      case "value":
        return a.t ? decodeTensor(a.t) : undefined;
      case "value_float":
        return { type: "float32", dims: [], data: Float32Array.of(a.f) };
      case "value_floats":
        return { type: "float32", dims: [a.floats.length], data: Float32Array.from(a.floats) };
      case "value_int":
        return { type: "int64", dims: [], data: BigInt64Array.of(a.i) };
      case "value_ints":
        return { type: "int64", dims: [a.ints.length], data: BigInt64Array.from(a.ints) };
      default:
        if (a.type === AttributeProto_AttributeType.SPARSE_TENSOR) return undefined;
    }
  }
  return undefined;
}
