// Shape rule of Constant: its value is known, and recorded as a shape vector when it is one.
import { constantNodeValue } from "../attributes.js";
import { tensorNumbers } from "../tensor-data.js";
import type { ShapeRule } from "./shape-rule.js";

const constant: ShapeRule = ({ node, g, set, setSym }) => {
  const value = constantNodeValue(node);
  if (!value) return;
  g.constValues.set(node.outputs[0]!, value);
  set(0, value.type, value.dims);
  if (value.dims.length === 1 && (value.type === "int64" || value.type === "int32")) setSym(0, tensorNumbers(value));
  if (value.dims.length === 0 && (value.type === "int64" || value.type === "int32")) setSym(0, tensorNumbers(value));
};

export const constantShapes: Readonly<Record<string, ShapeRule>> = {
  Constant: constant,
};
