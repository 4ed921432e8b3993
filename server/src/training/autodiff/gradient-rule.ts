import type { Graph, GraphNode } from "../onnx/graph.js";

/** What a gradient rule sees of the node it differentiates. */
export interface GradientContext {
  readonly g: Graph;
  readonly node: GraphNode;
  /** Input i's value name. */
  x(i: number): string;
  /** Output i's value name. */
  y(i: number): string;
  /** The gradient arriving at output i, or undefined when that output does not reach the loss. */
  dy(i: number): string | undefined;
  /** Whether input i needs a gradient (it lies on a path from a trained parameter and is a float). */
  wants(i: number): boolean;
}

/**
 * Emits, in standard ONNX ops, the gradients of a node's inputs given the gradients of its outputs.
 * Returns one entry per input: a value name, or undefined where no gradient is wanted or none flows.
 */
export type GradientRule = (ctx: GradientContext) => (string | undefined)[];
