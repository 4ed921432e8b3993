import type { Dim } from "../graph-builder.js";
import type { GraphNode } from "../graph-types.js";

/** A name for a dim nobody can know before run time, unique to the node and axis. */
export function undefinedDim(node: GraphNode, i: number): Dim {
  return `${node.outputs[0]}_d${i}`;
}

/** Numpy-style broadcasting of static or symbolic dims. */
export function broadcastDims(shapes: readonly (readonly Dim[])[]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[i - (rank - s.length)];
      if (d === undefined || d === 1) continue;
      if (dim === 1 || typeof dim === "string") dim = typeof d === "number" ? d : dim === 1 ? d : dim;
    }
    out.push(dim);
  }
  return out;
}

/** The product of dims, symbolic where one is. */
export function product(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((a, b) => arith("Mul", a, b), 1);
}

export function divide(a: Dim, b: Dim): Dim {
  return arith("Div", a, b);
}

/** Arithmetic on dims: numbers fold; a symbol times 1 stays the symbol; anything else becomes a new symbol. */
export function arith(op: string, a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return numericOp(op, a, b, true);
  if ((op === "Mul" || op === "Div") && b === 1) return a;
  if (op === "Mul" && a === 1) return b;
  if ((op === "Add" || op === "Sub") && b === 0) return a;
  return `(${a}${op === "Add" ? "+" : op === "Sub" ? "-" : op === "Mul" ? "*" : "/"}${b})`;
}

/** Add, Sub, Mul, Div (truncating for integers) or Equal (1 or 0) of two numbers, as ONNX computes them. */
export function numericOp(op: string, a: number, b: number, integer: boolean): number {
  switch (op) {
    case "Add":
      return a + b;
    case "Sub":
      return a - b;
    case "Mul":
      return a * b;
    case "Div":
      return integer ? Math.trunc(a / b) : a / b;
    default:
      return a === b ? 1 : 0;
  }
}
