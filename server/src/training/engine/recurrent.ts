import { attrFloat, attrInt, attrString, attrStrings, hasAttr } from "../onnx/attributes.js";
import type { Graph, GraphNode } from "../onnx/graph.js";

// RNN, LSTM and GRU as torch.onnx.export writes them are unrolled over time into MatMul, Add, Sigmoid, Tanh
// and Mul, one step after another, for the train graph: autodiff then gives backpropagation through time
// exactly, from the rules it already has. The eval graph and the published model keep the fused op.

const RECURRENT = new Set(["RNN", "LSTM", "GRU"]);
const DEFAULT_ACTIVATIONS: Record<string, string[]> = { RNN: ["Tanh"], LSTM: ["Sigmoid", "Tanh", "Tanh"], GRU: ["Sigmoid", "Tanh"] };
const SUPPORTED_ACTIVATIONS = new Set(["Tanh", "Sigmoid", "Relu"]);

/** One direction's weights and biases, split by gate. */
interface Direction {
  readonly kind: "RNN" | "LSTM" | "GRU";
  readonly hidden: number;
  readonly activations: readonly string[];
  /** R_d transposed: [H, G*H]. */
  readonly rT: string;
  /** The recurrent bias Rb_d: [G*H], or undefined. */
  readonly rb: string | undefined;
  /** GRU: Rb applied after the reset gate (linear_before_reset). */
  readonly linearBeforeReset: boolean;
}

function check(node: GraphNode): void {
  const fail = (why: string): never => {
    throw new Error(`${node.opType} node "${node.name}": ${why} has no gradient rule`);
  };
  if (node.inputs[4]) fail("sequence_lens (sequences of different lengths)");
  if (node.opType === "LSTM" && node.inputs[7]) fail("peephole weights (P)");
  if (hasAttr(node, "clip")) fail(`clip=${attrFloat(node, "clip", 0)}`);
  if (attrInt(node, "input_forget", 0) !== 0) fail("input_forget");
  const activations = attrStrings(node, "activations");
  if (activations?.some((a) => !SUPPORTED_ACTIVATIONS.has(a))) fail(`activations ${activations.join(", ")}`);
}

const gate = (g: Graph, v: string, k: number, hidden: number): string => g.op("Slice", [v, g.ints([k * hidden]), g.ints([(k + 1) * hidden]), g.ints([-1])]);
const at = (g: Graph, v: string, index: number): string => g.op("Gather", [v, g.constant([index], "int64", [])], { axis: 0 });
const plus = (g: Graph, a: string, b: string | undefined): string => (b ? g.op("Add", [a, b]) : a);

/** One time step: the new hidden (and cell) state from the step's input projection `xt` = X_t·Wᵀ + Wb. */
function cell(g: Graph, d: Direction, xt: string, h: string | undefined, c: string | undefined): { h: string; c?: string } {
  const H = d.hidden;
  const act = (k: number, v: string): string => g.op(d.activations[k]!, [v]);
  const rec = h ? plus(g, g.op("MatMul", [h, d.rT]), d.rb) : d.rb;
  if (d.kind === "RNN") return { h: act(0, plus(g, xt, rec)) };
  if (d.kind === "LSTM") {
    // Gates i, o, f, c.
    const z = plus(g, xt, rec);
    const [i, o, f, cc] = [act(0, gate(g, z, 0, H)), act(0, gate(g, z, 1, H)), act(0, gate(g, z, 2, H)), act(1, gate(g, z, 3, H))];
    const ic = g.op("Mul", [i, cc]);
    const next = c ? g.op("Add", [g.op("Mul", [f, c]), ic]) : ic;
    return { h: g.op("Mul", [o, act(2, next)]), c: next };
  }
  // GRU: gates z, r, h.
  const zt = act(0, plus(g, gate(g, xt, 0, H), rec && gate(g, rec, 0, H)));
  const rt = act(0, plus(g, gate(g, xt, 1, H), rec && gate(g, rec, 1, H)));
  let candidate: string;
  if (d.linearBeforeReset) {
    candidate = act(1, rec ? g.op("Add", [gate(g, xt, 2, H), g.op("Mul", [rt, gate(g, rec, 2, H)])]) : gate(g, xt, 2, H));
  } else {
    const rbh = d.rb && gate(g, d.rb, 2, H);
    const recurrent = h ? g.op("MatMul", [g.op("Mul", [rt, h]), gate(g, d.rT, 2, H)]) : undefined;
    candidate = act(1, plus(g, plus(g, gate(g, xt, 2, H), recurrent), rbh));
  }
  const keep = g.op("Sub", [g.scalarLike(1, zt), zt]);
  const fresh = g.op("Mul", [keep, candidate]);
  return { h: h ? g.op("Add", [fresh, g.op("Mul", [zt, h])]) : fresh };
}

/** Runs one direction over the sequence; returns each step's hidden state (in time order) and the final states. */
function runDirection(g: Graph, node: GraphNode, x: string, seq: number, index: number, reverse: boolean): { hs: string[]; h: string; c?: string } {
  const kind = node.opType as Direction["kind"];
  const gates = kind === "RNN" ? 1 : kind === "LSTM" ? 4 : 3;
  const hidden = attrInt(node, "hidden_size", 0);
  const defaults = DEFAULT_ACTIVATIONS[kind]!;
  const listed = attrStrings(node, "activations");
  const activations = listed ? listed.slice(index * defaults.length, (index + 1) * defaults.length) : defaults;
  const [w, r, b] = [at(g, node.inputs[1]!, index), at(g, node.inputs[2]!, index), node.inputs[3] ? at(g, node.inputs[3], index) : undefined];
  const wb = b && g.op("Slice", [b, g.ints([0]), g.ints([gates * hidden]), g.ints([0])]);
  const rb = b && g.op("Slice", [b, g.ints([gates * hidden]), g.ints([2 * gates * hidden]), g.ints([0])]);
  const d: Direction = { kind, hidden, activations, rT: g.op("Transpose", [r], { perm: [1, 0] }), rb, linearBeforeReset: attrInt(node, "linear_before_reset", 0) !== 0 };
  const xw = plus(g, g.op("MatMul", [x, g.op("Transpose", [w], { perm: [1, 0] })]), wb); // [seq, batch, G*H]
  let h = node.inputs[5] ? at(g, node.inputs[5], index) : undefined;
  let c = kind === "LSTM" && node.inputs[6] ? at(g, node.inputs[6], index) : undefined;
  const hs: string[] = new Array(seq);
  for (let k = 0; k < seq; k++) {
    const t = reverse ? seq - 1 - k : k;
    const next = cell(g, d, at(g, xw, t), h, c);
    h = next.h;
    c = next.c;
    hs[t] = h;
  }
  return { hs, h: h!, c };
}

function unroll(g: Graph, node: GraphNode): void {
  check(node);
  const batchFirst = attrInt(node, "layout", 0) === 1;
  const x = batchFirst ? g.op("Transpose", [node.inputs[0]!], { perm: [1, 0, 2] }) : node.inputs[0]!;
  const seq = g.dimsOf(x)?.[0];
  if (typeof seq !== "number") throw new Error(`${node.opType} node "${node.name}": training unrolls it over time, so its sequence length must be static (got ${String(seq)})`);
  const direction = attrString(node, "direction", "forward");
  const runs = direction === "bidirectional" ? [runDirection(g, node, x, seq, 0, false), runDirection(g, node, x, seq, 1, true)] : [runDirection(g, node, x, seq, 0, direction === "reverse")];
  const stack = (values: readonly string[], axis: number): string => g.op("Concat", values.map((v) => g.op("Unsqueeze", [v, g.ints([axis])])), { axis });
  const emit = (index: number, value: () => string, perm: number[]): void => {
    const name = node.outputs[index];
    if (name) g.add(batchFirst ? "Transpose" : "Identity", [value()], { outputs: [name], attrs: batchFirst ? { perm } : {} });
  };
  emit(0, () => stack(runs.map((run) => stack(run.hs, 0)), 1), [2, 0, 1, 3]); // [seq, D, batch, H]
  emit(1, () => stack(runs.map((run) => run.h), 0), [1, 0, 2]); // [D, batch, H]
  if (node.opType === "LSTM") emit(2, () => stack(runs.map((run) => run.c!), 0), [1, 0, 2]);
}

/** Replaces every RNN, LSTM and GRU node of `g` by its computation unrolled over time; returns how many. */
export function unrollRecurrent(g: Graph): number {
  let count = 0;
  g.rewrite((node) => {
    if (!RECURRENT.has(node.opType) || node.domain !== "") return false;
    unroll(g, node);
    count++;
    return true;
  });
  return count;
}
