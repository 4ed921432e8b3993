// Conversions between the protocol's TransferTensor and onnxruntime-node's Tensor, where sessions run (the
// workers, and the main thread's inline sessions).
import ort from "onnxruntime-node";
import { ELEMENT_SIZE, isTensorType, typedView, type TransferTensor } from "./tensor-types.js";

/** An ORT tensor over a transfer tensor's memory (no copy; the offset must be aligned for the type). */
export function toOrtTensor(t: TransferTensor): ort.Tensor {
  return new ort.Tensor(t.type, typedView(t.type, t.buffer, t.byteOffset, t.byteLength) as never, [...t.dims]);
}

/**
 * An ORT output as a transfer tensor. `copy`: ORT may reuse the buffer (a training worker keeps outputs as
 * the next step's inputs), so the caller gets its own; otherwise ORT handed the output its own buffer, which
 * is transferred as it is.
 */
export function fromOrtTensor(name: string, tensor: ort.Tensor, copy = false): TransferTensor {
  if (!isTensorType(tensor.type)) throw new Error(`output "${name}" has type ${tensor.type}, which aiaas cannot move`);
  const data = tensor.data as unknown as Uint8Array;
  const bytes = copy ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() : data;
  return { name, type: tensor.type, dims: tensor.dims, buffer: bytes.buffer as ArrayBuffer, byteOffset: bytes.byteOffset, byteLength: bytes.byteLength };
}

/**
 * Zero-filled feeds of one row for a warm-up or probe run: a variable dimension becomes 1. Throws, naming
 * the input, for a type aiaas cannot serve.
 */
export function zeroFeeds(inputs: readonly { readonly name: string; readonly type: string; readonly dims: readonly number[] }[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    if (!isTensorType(input.type)) throw new Error(`input "${input.name}" has type ${input.type}, which aiaas cannot serve`);
    const dims = input.dims.map((d) => (d < 0 ? 1 : d));
    const bytes = dims.reduce((a, b) => a * b, 1) * ELEMENT_SIZE[input.type];
    feeds[input.name] = toOrtTensor({ name: input.name, type: input.type, dims, buffer: new ArrayBuffer(bytes), byteOffset: 0, byteLength: bytes });
  }
  return feeds;
}
