import { attrString } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";

// Pad and Resize: both are linear in X, so their gradients are the transposed maps.

const INT64_MAX = 2 ** 62;

/** Constant-mode Pad: dX is dY with the padding sliced away (negative pads, which crop, are not differentiated). */
const pad: GradientRule = (c) => {
  const { g, node } = c;
  const mode = attrString(node, "mode", "constant");
  if (mode !== "constant") throw new Error(`Pad node "${node.name}": mode "${mode}" has no gradient rule (only "constant")`);
  const pads = node.inputs[1] ? g.constantOf(node.inputs[1]) : undefined;
  if (!pads) throw new Error(`Pad node "${node.name}": its pads must be constant for the gradient`);
  const values = Array.from(pads.data as ArrayLike<number | bigint>, Number);
  const axesInput = node.inputs[3] ? g.constantOf(node.inputs[3]) : undefined;
  const rank = g.rankOf(c.x(0));
  const axes = axesInput ? Array.from(axesInput.data as ArrayLike<number | bigint>, (a) => (Number(a) + rank) % rank) : Array.from({ length: rank }, (_, i) => i);
  const n = axes.length;
  if (values.some((v) => v < 0)) throw new Error(`Pad node "${node.name}": negative pads (cropping) have no gradient rule`);
  const starts = values.slice(0, n);
  const ends = values.slice(n).map((v) => (v > 0 ? -v : INT64_MAX));
  return [g.op("Slice", [c.dy(0)!, g.ints(starts), g.ints(ends), g.ints(axes)])];
};

/**
 * Resize over height and width (NCHW) in any mode and coordinate mapping is separable: Y = A_h · X · A_wᵀ per
 * channel. Each A is read off by resizing an identity with the node's own attributes, so the gradient
 * dX = A_hᵀ · dY · A_w is exact whatever the mode. Needs static height and width.
 */
const resize: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const xd = g.dimsOf(x);
  const yd = g.dimsOf(c.y(0));
  const what = `Resize node "${node.name}"`;
  if (!xd || !yd || xd.length !== 4) throw new Error(`${what}: only 4-D (NCHW) inputs have a gradient rule`);
  const [h, w, h2, w2] = [xd[2], xd[3], yd[2], yd[3]];
  if (![h, w, h2, w2].every((d) => typeof d === "number")) throw new Error(`${what}: its gradient needs static height and width`);
  if (xd[0] !== yd[0] || xd[1] !== yd[1]) throw new Error(`${what}: resizing the batch or channel dims has no gradient rule`);
  const scales = node.inputs[2] ? g.constantOf(node.inputs[2]) : undefined;
  const given = scales && scales.data.length === 4 ? Array.from(scales.data as Float32Array) : undefined;
  /** The [n, n2] matrix mapping one spatial axis: identity rows resized along that axis as the node resizes. */
  const axisMatrix = (n: number, n2: number, axis: 2 | 3): string => {
    const type = g.typeOf(x).type;
    const eye = type === "float64" ? new Float64Array(n * n) : new Float32Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    const dims = axis === 2 ? [n, 1, n, 1] : [n, 1, 1, n];
    // The same scale the node was given (coordinate mappings read it), or the same output size.
    const how = given
      ? ["", g.constant(axis === 2 ? [1, 1, given[2]!, 1] : [1, 1, 1, given[3]!], "float32")]
      : ["", "", g.ints(axis === 2 ? [n, 1, n2, 1] : [n, 1, 1, n2])];
    const [resized] = g.add("Resize", [g.constant(eye, type, dims), ...how], { outputs: 1 });
    g.nodes[g.nodes.length - 1]!.attributes = [...node.attributes];
    return g.op("Reshape", [resized!, g.ints([n, n2])]);
  };
  const aH = axisMatrix(h as number, h2 as number, 2); // [H, H']: column i' holds output row i's weights
  const aW = axisMatrix(w as number, w2 as number, 3); // [W, W']
  const dy = c.dy(0)!;
  const rows = g.op("MatMul", [aH, dy]); // [N, C, H, W']
  return [g.op("MatMul", [rows, g.op("Transpose", [aW], { perm: [1, 0] })]), undefined, undefined, undefined];
};

export const resamplingRules: Record<string, GradientRule> = { Pad: pad, Resize: resize };
