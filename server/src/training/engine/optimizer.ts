import type { Graph } from "../onnx/graph.js";

/** Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW). */
export type OptimizerSpec =
  | { readonly type: "sgd"; readonly momentum?: number; readonly nesterov?: boolean; readonly weightDecay?: number }
  | {
      readonly type: "adam" | "adamw";
      readonly beta1?: number;
      readonly beta2?: number;
      readonly epsilon?: number;
      readonly weightDecay?: number;
    };

/** One optimizer-state tensor per parameter, zero at the start, named `<param>.<slot>`. */
export function optimizerSlots(spec: OptimizerSpec): string[] {
  if (spec.type === "sgd") return (spec.momentum ?? 0) > 0 ? ["momentum"] : [];
  return ["exp_avg", "exp_avg_sq"];
}

export interface UpdateValues {
  /** The new parameter value. */
  readonly param: string;
  /** The new state values, in the order of optimizerSlots. */
  readonly state: readonly string[];
}

export interface OptimizerScalars {
  /** Learning rate, a scalar graph input. */
  readonly lr: string;
  /** The 1-based step number as a float scalar graph input (bias correction). */
  readonly step: string;
}

/**
 * Emits the update of every parameter. Per-step scalars (bias corrections, step size) are built once and
 * shared. Follows torch's arithmetic order (e.g. Adam's denom = sqrt(v)/sqrt(bc2) + eps) so results agree
 * to float rounding.
 */
export function appendOptimizer(
  g: Graph,
  spec: OptimizerSpec,
  scalars: OptimizerScalars,
  params: readonly { readonly param: string; readonly grad: string; readonly state: readonly string[] }[],
): UpdateValues[] {
  if (params.length === 0) return [];
  const like = params[0]!.param;
  const c = (v: number): string => g.scalarLike(v, like);
  const wd = spec.weightDecay ?? 0;
  if (spec.type === "sgd") {
    const momentum = spec.momentum ?? 0;
    return params.map(({ param, grad, state }) => {
      let d = wd ? g.op("Add", [grad, g.op("Mul", [param, c(wd)])]) : grad;
      const next: string[] = [];
      if (momentum > 0) {
        const buf = g.op("Add", [g.op("Mul", [state[0]!, c(momentum)]), d]);
        next.push(buf);
        d = spec.nesterov ? g.op("Add", [d, g.op("Mul", [buf, c(momentum)])]) : buf;
      }
      return { param: g.op("Sub", [param, g.op("Mul", [d, scalars.lr])]), state: next };
    });
  }
  const beta1 = spec.beta1 ?? 0.9;
  const beta2 = spec.beta2 ?? 0.999;
  const eps = spec.epsilon ?? 1e-8;
  const one = c(1);
  const bc1 = g.op("Sub", [one, g.op("Pow", [c(beta1), scalars.step])]);
  const bc2Sqrt = g.op("Sqrt", [g.op("Sub", [one, g.op("Pow", [c(beta2), scalars.step])])]);
  const stepSize = g.op("Div", [scalars.lr, bc1]);
  const decay = spec.type === "adamw" && wd ? g.op("Sub", [one, g.op("Mul", [scalars.lr, c(wd)])]) : undefined;
  return params.map(({ param, grad, state }) => {
    let p = param;
    let gr = grad;
    if (decay) p = g.op("Mul", [p, decay]); // decoupled weight decay (AdamW)
    else if (wd) gr = g.op("Add", [gr, g.op("Mul", [p, c(wd)])]); // L2 added to the gradient (Adam)
    const m = g.op("Add", [g.op("Mul", [state[0]!, c(beta1)]), g.op("Mul", [gr, c(1 - beta1)])]);
    const v = g.op("Add", [g.op("Mul", [state[1]!, c(beta2)]), g.op("Mul", [g.op("Mul", [gr, gr]), c(1 - beta2)])]);
    const denom = g.op("Add", [g.op("Div", [g.op("Sqrt", [v]), bc2Sqrt]), c(eps)]);
    const next = g.op("Sub", [p, g.op("Mul", [g.op("Div", [m, denom]), stepSize])]);
    return { param: next, state: [m, v] };
  });
}
