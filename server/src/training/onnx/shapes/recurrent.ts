// Shape rules of the recurrent ops (RNN, LSTM, GRU): Y and the final states from X's sequence and batch dims.
import { attrInt, attrString } from "../attributes.js";
import type { ShapeRule } from "./shape-rule.js";

const recurrent: ShapeRule = ({ node, set, first, dims0 }) => {
  if (!first) return;
  const hidden = attrInt(node, "hidden_size", 0);
  const directions = attrString(node, "direction", "forward") === "bidirectional" ? 2 : 1;
  if (!dims0 || dims0.length !== 3 || hidden <= 0) {
    node.outputs.forEach((_, i) => set(i, first.type, undefined));
    return;
  }
  const batchFirst = attrInt(node, "layout", 0) === 1;
  const [seq, batch] = batchFirst ? [dims0[1]!, dims0[0]!] : [dims0[0]!, dims0[1]!];
  set(0, first.type, batchFirst ? [batch, seq, directions, hidden] : [seq, directions, batch, hidden]);
  const state = batchFirst ? [batch, directions, hidden] : [directions, batch, hidden];
  set(1, first.type, state);
  set(2, first.type, state);
};

export const recurrentShapes: Readonly<Record<string, ShapeRule>> = { RNN: recurrent, LSTM: recurrent, GRU: recurrent };
