import { attrInt, attrInts } from "../../onnx/attributes.js";
import type { GradientRule } from "../gradient-rule.js";
import { countOf, expandLike, scatterAddFlat, zerosOfShape } from "../grad-ops.js";
import { geometry } from "./convolution.js";

const maxPool: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const kernel = attrInts(node, "kernel_shape")!;
  const geo = geometry(c, kernel);
  if (attrInt(node, "storage_order", 0) !== 0) throw new Error(`MaxPool node "${node.name}": storage_order=1 has no gradient rule`);
  const indices = node.outputs[1] || g.addNodeOutput(node, 1, "maxpool_indices", { type: "int64", dims: g.dimsOf(node.outputs[0]!) });
  const dy = c.dy(0)!;
  const disjoint = geo.kernel.every((k, i) => geo.strides[i]! >= k) && geo.dilations.every((d) => d === 1);
  if (disjoint) {
    // Windows do not overlap, so each input cell receives at most one gradient: MaxUnpool places them.
    return [
      g.op("MaxUnpool", [dy, indices, g.op("Shape", [x])], {
        kernel_shape: [...kernel],
        strides: [...geo.strides],
        pads: [...geo.pads],
      }),
    ];
  }
  // Overlapping windows can pick the same cell twice: scatter-add into the flattened input (MaxPool's
  // indices are flat positions in the whole input).
  return [scatterAddFlat(g, x, indices, dy)];
};

const averagePool: GradientRule = (c) => {
  const { g, node } = c;
  const x = c.x(0);
  const kernel = attrInts(node, "kernel_shape")!;
  const geo = geometry(c, kernel);
  const padded = geo.pads.some((p) => p !== 0);
  if (padded && attrInt(node, "count_include_pad", 0) === 0) {
    throw new Error(`AveragePool node "${node.name}": padding with count_include_pad=0 has no gradient rule`);
  }
  if (kernel.length !== 2) throw new Error(`AveragePool node "${node.name}": only 2-D pooling has a gradient rule`);
  const xd = g.dimsOf(x);
  const yd = g.dimsOf(c.dy(0)!);
  if (!xd || !yd || [1, 2, 3].some((i) => typeof xd[i] !== "number" || typeof yd[i] !== "number")) {
    throw new Error(`AveragePool node "${node.name}": channel and spatial dims must be static for the gradient`);
  }
  const channels = xd[1] as number;
  const area = kernel[0]! * kernel[1]!;
  const type = g.typeOf(x).type;
  const data = type === "float64" ? new Float64Array(channels * area) : new Float32Array(channels * area);
  data.fill(1 / area);
  const kernelT = g.constant(data, type, [channels, 1, kernel[0]!, kernel[1]!], "avgpool_kernel");
  // Spreading each window's gradient evenly over its cells is a depthwise ConvTranspose with a constant kernel.
  const outputPadding = [0, 1].map(
    (i) => (xd[i + 2] as number) - (((yd[i + 2] as number) - 1) * geo.strides[i]! + kernel[i]! - geo.pads[i]! - geo.pads[i + 2]!),
  );
  return [
    g.op("ConvTranspose", [c.dy(0)!, kernelT], {
      group: channels,
      strides: [...geo.strides],
      pads: [...geo.pads],
      output_padding: outputPadding,
    }),
  ];
};

const globalAveragePool: GradientRule = (c) => {
  const { g } = c;
  const x = c.x(0);
  const dy = c.dy(0)!;
  return [g.op("Div", [expandLike(g, dy, x), g.op("Div", [countOf(g, x, x), countOf(g, dy, x)])])];
};

/** The gradient goes to each channel's first largest element, as PyTorch's adaptive max pooling routes it. */
const globalMaxPool: GradientRule = (c) => {
  const { g } = c;
  const x = c.x(0);
  const flat = g.op("Reshape", [x, g.ints([0, 0, -1])]);
  const at = g.op("ArgMax", [flat], { axis: 2, keepdims: 1 });
  const zeros = zerosOfShape(g, g.op("Shape", [flat]), x);
  const dy = g.op("Reshape", [c.dy(0)!, g.ints([0, 0, 1])]);
  return [g.op("Reshape", [g.op("ScatterElements", [zeros, at, dy], { axis: 2 }), g.op("Shape", [x])])];
};

export const poolingRules: Record<string, GradientRule> = {
  GlobalMaxPool: globalMaxPool,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
};
