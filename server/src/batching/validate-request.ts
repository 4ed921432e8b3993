import { invalidArgument } from "../common/errors.js";
import { DATATYPE_NAME, ELEMENT_SIZE, type HostTensor } from "../runtime/index.js";
import type { ModelSignature, TensorSpec } from "./model-signature.js";

export interface NamedTensor extends HostTensor {
  readonly name: string;
}

export interface PreparedRequest {
  readonly inputs: readonly HostTensor[];
  readonly rows: number;
  readonly key: string;
  readonly outputs: readonly string[];
}

const TYPE_NAMES = DATATYPE_NAME;

export function describeSpec(spec: TensorSpec): string {
  return `${spec.name}: ${TYPE_NAMES[spec.type] ?? spec.type} [${spec.dims.join(", ")}]`;
}

/**
 * Checks a request against the model's signature before it may join a batch, so a bad request fails alone
 * with a message that names the input and what was expected. Returns the inputs in model order and the
 * batch key (the non-batch dimensions).
 */
export function validateRequest(
  label: string,
  signature: ModelSignature,
  inputs: readonly NamedTensor[],
  outputs: readonly string[],
): PreparedRequest {
  // Models have a handful of inputs: linear scans beat allocating a Map per request.
  const expected = (): string => signature.inputs.map(describeSpec).join("; ");
  for (let i = 0; i < inputs.length; i++) {
    const name = inputs[i].name;
    for (let j = 0; j < i; j++) if (inputs[j].name === name) throw invalidArgument(`${label}: input "${name}" is given twice`);
    if (!signature.inputs.some((spec) => spec.name === name)) {
      throw invalidArgument(`${label}: unknown input "${name}"; the model's inputs are ${expected()}`);
    }
  }
  const batching = signature.maxBatchSize > 0;
  let rows = -1;
  let key = "";
  const ordered = signature.inputs.map((spec) => {
    const tensor = inputs.find((t) => t.name === spec.name);
    if (!tensor) throw invalidArgument(`${label}: missing input "${spec.name}"; the model's inputs are ${expected()}`);
    if (tensor.type !== spec.type) {
      throw invalidArgument(`${label}: input "${spec.name}" is ${TYPE_NAMES[tensor.type]}, the model expects ${TYPE_NAMES[spec.type]}`);
    }
    if (tensor.dims.length !== spec.dims.length) {
      throw invalidArgument(`${label}: input "${spec.name}" has shape [${tensor.dims.join(", ")}] of rank ${tensor.dims.length}, the model expects rank ${spec.dims.length}: [${spec.dims.join(", ")}]`);
    }
    tensor.dims.forEach((d, axis) => {
      if (d === 0) throw invalidArgument(`${label}: input "${spec.name}" has 0 ${axis === 0 && batching ? "rows" : `elements along dimension ${axis}`}`);
      if (spec.dims[axis] >= 0 && spec.dims[axis] !== d) {
        throw invalidArgument(`${label}: input "${spec.name}" has shape [${tensor.dims.join(", ")}], the model expects [${spec.dims.join(", ")}] (dimension ${axis} must be ${spec.dims[axis]})`);
      }
    });
    if (batching) {
      const r = tensor.dims[0];
      if (r > signature.maxBatchSize) {
        throw invalidArgument(`${label}: input "${spec.name}" has ${r} rows, more than max_batch_size ${signature.maxBatchSize}; split the request`);
      }
      if (rows >= 0 && r !== rows) {
        throw invalidArgument(`${label}: inputs disagree on the row count: "${spec.name}" has ${r}, another input has ${rows}`);
      }
      rows = r;
    }
    const expectedBytes = byteLength(tensor.dims, tensor.type);
    if (tensor.data.byteLength !== expectedBytes) {
      throw invalidArgument(`${label}: input "${spec.name}" holds ${tensor.data.byteLength} bytes, its shape [${tensor.dims.join(", ")}] of ${TYPE_NAMES[tensor.type]} needs ${expectedBytes}`);
    }
    // Only the variable dimensions tell requests apart (the fixed ones were checked equal above), so a model
    // of fixed shapes has one key and no string is built per request.
    for (let axis = batching ? 1 : 0; axis < tensor.dims.length; axis++) if (spec.dims[axis]! < 0) key += `${tensor.dims[axis]}x`;
    key += "|";
    return tensor;
  });
  for (let i = 0; i < outputs.length; i++) {
    const name = outputs[i];
    if (!signature.outputs.some((spec) => spec.name === name)) {
      throw invalidArgument(`${label}: unknown output "${name}"; the model's outputs are ${signature.outputs.map((o) => o.name).join(", ")}`);
    }
    if (outputs.indexOf(name) !== i) throw invalidArgument(`${label}: output "${name}" is requested twice`);
  }
  return { inputs: ordered, rows: batching ? rows : 1, key, outputs };
}

/** Bytes a shape needs; dims were checked to be small non-negative integers by the codec. */
export function byteLength(dims: readonly number[], type: keyof typeof ELEMENT_SIZE): number {
  let n = ELEMENT_SIZE[type];
  for (const d of dims) n *= d;
  return n;
}
