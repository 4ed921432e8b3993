import { create } from "@bufbuild/protobuf";
import {
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type ModelProto,
  type ValueInfoProto,
} from "onnx-buf";
import { attribute, DEFAULT_OPSET, tensorProto, valueInfo, type AttributeValue, type ConstTensor, type Dim, type FloatAttr, type TypedData } from "./graph-builder.js";
import type { ElementType } from "./element-type.js";
import { decodeTensor, elementTypeOf } from "./tensor-data.js";
import { inferNode } from "./shape-inference.js";
import type { GraphNode, GraphValue, ShapeGraph, ValueType } from "./graph-types.js";

export type { GraphNode, GraphValue, ValueType } from "./graph-types.js";

export interface AddNodeOptions {
  readonly outputs?: readonly string[] | number;
  readonly attrs?: Readonly<Record<string, AttributeValue | FloatAttr>>;
  readonly name?: string;
}

/**
 * The engine's editable view of one ONNX model: nodes in topological order, decoded initializers, and the
 * type and shape of every value, inferred as nodes are added so gradient rules and layers can ask for them.
 * It writes back to a ModelProto that keeps the source model's metadata.
 */
export class Graph implements ShapeGraph {
  name: string;
  readonly inputs: GraphValue[] = [];
  readonly outputs: GraphValue[] = [];
  readonly initializers = new Map<string, ConstTensor>();
  readonly nodes: GraphNode[] = [];
  /** Inferred types, by value name. */
  readonly types = new Map<string, ValueType>();
  /** 1-D integer values whose elements are known symbolically (shapes of values with a dynamic batch …). */
  readonly symbolic = new Map<string, readonly Dim[]>();
  /** Values of Constant nodes, so shape inference and folding can read them like initializers. */
  readonly constValues = new Map<string, ConstTensor>();
  private readonly names = new Set<string>();
  private counter = 0;
  private readonly source: ModelProto | undefined;
  opset: number;

  constructor(name: string, options: { opset?: number; source?: ModelProto } = {}) {
    this.name = name;
    this.opset = options.opset ?? DEFAULT_OPSET;
    this.source = options.source;
  }

  static fromModel(model: ModelProto): Graph {
    const graph = model.graph;
    if (!graph) throw new Error("ONNX model has no graph");
    const opset = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
    const g = new Graph(graph.name, { opset: Number(opset?.version ?? DEFAULT_OPSET), source: model });
    for (const init of graph.initializer) g.addInitializer(init.name, decodeTensor(init));
    for (const vi of graph.input) {
      if (g.initializers.has(vi.name)) continue; // IR < 4 lists initializers as inputs too
      const t = readValueInfo(vi);
      g.addInput(vi.name, t.type, t.dims ?? []);
      if (!t.dims) g.types.set(vi.name, t);
    }
    for (const node of graph.node) {
      g.insertNode({
        opType: node.opType,
        domain: node.domain,
        name: node.name || g.fresh(`${node.opType}_node`),
        inputs: [...node.input],
        outputs: [...node.output],
        attributes: [...node.attribute],
      });
    }
    for (const vi of graph.output) {
      const t = g.types.get(vi.name) ?? readValueInfo(vi);
      g.outputs.push({ name: vi.name, type: t.type, dims: t.dims });
    }
    return g;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX graph "${this.name}": value "${name}" is defined twice`);
    this.names.add(name);
    return name;
  }

  addInput(name: string, type: ElementType, dims: readonly Dim[]): string {
    this.inputs.push({ name: this.claim(name), type, dims });
    this.types.set(name, { type, dims });
    return name;
  }

  addOutput(name: string, dims?: readonly Dim[]): string {
    const t = this.typeOf(name);
    this.outputs.push({ name, type: t.type, dims: dims ?? t.dims });
    return name;
  }

  addInitializer(name: string, tensor: ConstTensor): string {
    this.initializers.set(this.claim(name), tensor);
    this.types.set(name, { type: tensor.type, dims: tensor.dims });
    if (tensor.dims.length === 1 && (tensor.type === "int64" || tensor.type === "int32")) {
      this.symbolic.set(name, Array.from(tensor.data as ArrayLike<number | bigint>, Number));
    }
    return name;
  }

  /** A constant as an initializer: values of the given element type (float types default to float32). */
  constant(values: readonly number[] | TypedData, type: ElementType, dims: readonly number[] = [values.length], prefix = "const"): string {
    const data = toTyped(values, type);
    return this.addInitializer(this.fresh(prefix), { type, dims, data });
  }

  /** A scalar of the same element type as `like`. */
  scalarLike(value: number, like: string): string {
    return this.constant([value], this.typeOf(like).type, []);
  }

  ints(values: readonly number[]): string {
    return this.constant(values, "int64");
  }

  add(opType: string, inputs: readonly string[], options: AddNodeOptions = {}): string[] {
    const spec = options.outputs ?? 1;
    const outputs =
      typeof spec === "number" ? Array.from({ length: spec }, () => this.fresh(opType.toLowerCase())) : spec.map((n) => n);
    const node: GraphNode = {
      opType,
      domain: "",
      name: options.name ?? this.fresh(`${opType}_node`),
      inputs: [...inputs],
      outputs,
      attributes: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    };
    this.insertNode(node);
    return outputs;
  }

  /** Adds a single-output node and returns its output. */
  op(opType: string, inputs: readonly string[], attrs?: Readonly<Record<string, AttributeValue | FloatAttr>>): string {
    return this.add(opType, inputs, { attrs })[0]!;
  }

  insertNode(node: GraphNode): void {
    for (const out of node.outputs) if (out !== "") this.claim(out);
    this.names.add(node.name);
    this.nodes.push(node);
    inferNode(this, node);
  }

  /**
   * Rebuilds the node list in order; `expand` may replace a node by others, added through add/op, that compute
   * the node's outputs under the same names (return true), so every later node still finds its inputs.
   */
  rewrite(expand: (node: GraphNode) => boolean): void {
    const old = this.nodes.splice(0);
    for (const node of old) {
      for (const out of node.outputs) if (out) this.names.delete(out);
      if (expand(node)) continue;
      for (const out of node.outputs) if (out) this.names.add(out);
      this.nodes.push(node);
    }
  }

  /** Gives an existing node one more output (e.g. MaxPool's Indices for its gradient) and returns its name. */
  addNodeOutput(node: GraphNode, index: number, prefix: string, type: ValueType): string {
    const name = this.claim(this.fresh(prefix));
    while (node.outputs.length < index) node.outputs.push("");
    node.outputs[index] = name;
    this.types.set(name, type);
    return name;
  }

  /** Removes a single-output node and makes its output an initializer holding `value` (constant folding). */
  replaceWithConstant(node: GraphNode, value: ConstTensor): void {
    const index = this.nodes.indexOf(node);
    if (index < 0) throw new Error(`node "${node.name}" is not in graph "${this.name}"`);
    this.nodes.splice(index, 1);
    const out = node.outputs[0]!;
    this.initializers.set(out, value);
    this.constValues.delete(out);
    this.types.set(out, { type: value.type, dims: value.dims });
  }

  /** Type of a value; throws when the value is unknown, naming it. */
  typeOf(name: string): ValueType {
    const t = this.types.get(name);
    if (!t) throw new Error(`ONNX graph "${this.name}": no type known for value "${name}"`);
    return t;
  }

  dimsOf(name: string): readonly Dim[] | undefined {
    return this.types.get(name)?.dims;
  }

  rankOf(name: string): number {
    const dims = this.typeOf(name).dims;
    if (!dims) throw new Error(`ONNX graph "${this.name}": the rank of "${name}" is unknown`);
    return dims.length;
  }

  /** The constant value of an initializer, or undefined. */
  constantOf(name: string): ConstTensor | undefined {
    return this.initializers.get(name) ?? this.constValues.get(name);
  }

  /** The producer of each value. */
  producers(): Map<string, GraphNode> {
    const map = new Map<string, GraphNode>();
    for (const node of this.nodes) for (const out of node.outputs) if (out) map.set(out, node);
    return map;
  }

  /** Removes nodes and initializers that no output depends on. */
  prune(): void {
    const needed = new Set(this.outputs.map((o) => o.name));
    const keep: GraphNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (node.outputs.some((o) => needed.has(o))) {
        keep.push(node);
        for (const input of node.inputs) if (input) needed.add(input);
      }
    }
    this.nodes.splice(0, this.nodes.length, ...keep.reverse());
    for (const name of [...this.initializers.keys()]) if (!needed.has(name)) this.initializers.delete(name);
  }

  toModel(options: { docString?: string; producerName?: string } = {}): ModelProto {
    const src = this.source;
    const opsets = src ? src.opsetImport.filter((o) => o.domain !== "" && o.domain !== "ai.onnx") : [];
    return create(ModelProtoSchema, {
      irVersion: src && src.irVersion >= 8n ? src.irVersion : 8n,
      producerName: options.producerName ?? "aiaas",
      producerVersion: src?.producerVersion ?? "",
      domain: src?.domain ?? "",
      modelVersion: src?.modelVersion ?? 0n,
      docString: options.docString ?? src?.docString ?? "",
      metadataProps: src?.metadataProps ?? [],
      functions: src?.functions ?? [],
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(this.opset) }), ...opsets],
      graph: create(GraphProtoSchema, {
        name: this.name,
        input: this.inputs.map((v) => valueInfo(v.name, v.type, v.dims ?? [])),
        output: this.outputs.map((v) => valueInfo(v.name, v.type, v.dims ?? [])),
        initializer: [...this.initializers].map(([name, t]) => tensorProto(name, t)),
        node: this.nodes.map((n) =>
          create(NodeProtoSchema, {
            opType: n.opType,
            domain: n.domain,
            name: n.name,
            input: n.inputs,
            output: n.outputs,
            attribute: n.attributes,
          }),
        ),
      }),
    });
  }
}

function toTyped(values: readonly number[] | TypedData, type: ElementType): TypedData {
  if (!Array.isArray(values)) return values as TypedData;
  const list = values as readonly number[];
  switch (type) {
    case "float32":
      return Float32Array.from(list);
    case "float64":
      return Float64Array.from(list);
    case "int64":
      return BigInt64Array.from(list, (v) => BigInt(v));
    case "int32":
      return Int32Array.from(list);
    case "bool":
    case "uint8":
      return Uint8Array.from(list);
    default:
      throw new Error(`constants of type ${type} are not supported`);
  }
}

function readValueInfo(vi: ValueInfoProto): ValueType {
  const tt = vi.type?.value.case === "tensorType" ? vi.type.value.value : undefined;
  const type = tt ? elementTypeOf(tt.elemType) : undefined;
  if (!type) throw new Error(`value "${vi.name}": only tensors of numeric types are supported`);
  if (!tt!.shape) return { type, dims: undefined };
  let unknown = 0;
  const dims = tt!.shape.dim.map((d): Dim =>
    d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" && d.value.value ? d.value.value : `${vi.name}_d${unknown++}`,
  );
  return { type, dims };
}
