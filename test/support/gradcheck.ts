// Central finite differences against the gradients the engine emits, run in real ONNX Runtime sessions.
import ort from "onnxruntime-node";
import { Graph } from "../../server/src/training/onnx/graph.js";
import { encodeModel } from "../../server/src/training/onnx/model-file.js";
import { appendBackward } from "../../server/src/training/autodiff/backward.js";
import { seededRandom } from "../../scripts/seeded-random.js";

export interface GradInput {
  readonly name: string;
  readonly dims: readonly number[];
  /** Integer inputs (indices, labels) carry fixed values and no gradient. */
  readonly ints?: readonly number[];
  /** Float values to use instead of random ones (e.g. to keep away from kinks). */
  readonly values?: readonly number[];
  /** Whether to check this input's gradient (default: float inputs are checked). */
  readonly check?: boolean;
}

export interface GradCase {
  readonly name: string;
  readonly inputs: readonly GradInput[];
  /** Builds the op(s) under test from the input names; returns the value to differentiate. */
  readonly build: (g: Graph, inputs: readonly string[]) => string;
  /** Positive inputs only (Log, Sqrt, Pow …). */
  readonly positive?: boolean;
  readonly opset?: number;
}

export interface GradReport {
  readonly type: "float64" | "float32";
  readonly maxError: number;
  readonly checked: number;
}

function makeGraph(c: GradCase, type: "float64" | "float32"): { graph: Graph; params: string[]; grads: ReadonlyMap<string, string> } {
  const g = new Graph(c.name, { opset: c.opset ?? 17 });
  const names = c.inputs.map((input) => g.addInput(input.name, input.ints ? "int64" : type, input.dims));
  const y = c.build(g, names);
  const dims = g.dimsOf(y)!;
  const random = seededRandom(99);
  const count = (dims as number[]).reduce((a, b) => a * b, 1);
  const weights = Array.from({ length: count }, () => random() * 2 - 1);
  // A random projection makes every output element matter to the scalar loss.
  const loss = g.op("ReduceSum", [g.op("Mul", [y, g.constant(weights, type, dims as number[])])], { keepdims: 0 });
  g.add("Identity", [loss], { outputs: ["loss"] });
  g.addOutput("loss", []);
  const params = c.inputs.filter((i) => !i.ints && i.check !== false).map((i) => i.name);
  const { gradients } = appendBackward(g, "loss", params);
  for (const [p, grad] of gradients) {
    g.add("Identity", [grad], { outputs: [`grad_${p}`] });
    g.addOutput(`grad_${p}`);
  }
  return { graph: g, params, grads: gradients };
}

export async function gradCheck(c: GradCase): Promise<GradReport> {
  let type: "float64" | "float32" = "float64";
  let session: ort.InferenceSession;
  let built = makeGraph(c, type);
  try {
    session = await ort.InferenceSession.create(encodeModel(built.graph.toModel()));
  } catch (error) {
    if (!/NOT_IMPLEMENTED|Could not find an implementation/i.test(String(error))) throw error;
    type = "float32";
    built = makeGraph(c, type);
    session = await ort.InferenceSession.create(encodeModel(built.graph.toModel()));
  }
  const random = seededRandom(1234);
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of c.inputs) {
    const n = input.dims.reduce((a, b) => a * b, 1);
    if (input.ints) {
      feeds[input.name] = new ort.Tensor("int64", BigInt64Array.from(input.ints, BigInt), [...input.dims]);
    } else {
      const values = input.values ?? Array.from({ length: n }, () => (c.positive ? 0.5 + random() * 1.5 : random() * 2 - 1));
      const data = type === "float64" ? Float64Array.from(values) : Float32Array.from(values);
      feeds[input.name] = new ort.Tensor(type, data, [...input.dims]);
    }
  }
  const analytic = await session.run(feeds);
  const eps = type === "float64" ? 1e-6 : 1e-2;
  const tolerance = type === "float64" ? 1e-6 : 2e-2;
  const partials: { p: string; i: number; numeric: number; exact: number }[] = [];
  for (const p of built.params) {
    const grad = analytic[`grad_${p}`];
    if (!grad) throw new Error(`${c.name}: no gradient for ${p}`);
    const values = feeds[p]!.data as Float64Array | Float32Array;
    for (let i = 0; i < values.length; i++) {
      const original = values[i]!;
      values[i] = original + eps;
      const plus = Number((await session.run(feeds, ["loss"])).loss!.data[0]);
      values[i] = original - eps;
      const minus = Number((await session.run(feeds, ["loss"])).loss!.data[0]);
      values[i] = original;
      partials.push({ p, i, numeric: (plus - minus) / (2 * eps), exact: Number(grad.data[i]) });
    }
  }
  // Relative error, with a floor at 1% of the case's largest partial: a small gradient the rule gets wrong (or
  // drops to zero) still fails, while float noise on a near-zero one does not.
  const scale = partials.reduce((m, q) => Math.max(m, Math.abs(q.numeric)), 0);
  const floor = Math.max(1e-2 * scale, 1e-12);
  let maxError = 0;
  for (const { p, i, numeric, exact } of partials) {
    const error = Math.abs(numeric - exact) / Math.max(Math.abs(numeric), floor);
    if (error > tolerance) throw new Error(`${c.name}: d loss/d ${p}[${i}] = ${exact} by the rule, ${numeric} by finite differences (${type})`);
    maxError = Math.max(maxError, error);
  }
  const checked = partials.length;
  await session.release();
  return { type, maxError, checked };
}
