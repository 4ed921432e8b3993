import type { AttributeProto } from "onnx-buf";
import type { ConstTensor, Dim } from "./graph-builder.js";
import type { ElementType } from "./element-type.js";

// The graph's data shapes, apart from the Graph class so that shape inference and attribute reading, which
// the class calls, need not import it back.

/** A value's element type and shape; dims is undefined when even the rank is unknown. */
export interface ValueType {
  readonly type: ElementType;
  readonly dims: readonly Dim[] | undefined;
}

export interface GraphNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
}

export interface GraphValue {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly Dim[] | undefined;
}

/** What shape inference reads and writes of a graph. */
export interface ShapeGraph {
  readonly types: Map<string, ValueType>;
  readonly symbolic: Map<string, readonly Dim[]>;
  readonly constValues: Map<string, ConstTensor>;
  readonly opset: number;
  constantOf(name: string): ConstTensor | undefined;
}
