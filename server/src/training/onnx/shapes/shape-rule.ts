import type { Dim } from "../graph-builder.js";
import type { ElementType } from "../element-type.js";
import type { GraphNode, ShapeGraph, ValueType } from "../graph-types.js";

/** What a shape rule reads of one node and writes for it. */
export interface ShapeContext {
  readonly g: ShapeGraph;
  readonly node: GraphNode;
  /** The first input's type, and its dims. */
  readonly first: ValueType | undefined;
  readonly dims0: readonly Dim[] | undefined;
  /** Sets output i's element type and dims. */
  set(i: number, type: ElementType, dims: readonly Dim[] | undefined): void;
  /** Input i's type. */
  t(i: number): ValueType | undefined;
  /** Input i's value as a 1-D shape vector, element by element, where it is known. */
  sym(i: number): readonly Dim[] | undefined;
  /** Records output i's value as a shape vector. */
  setSym(i: number, values: readonly Dim[]): void;
  /** Input i's constant integers, where the input is a constant. */
  constInts(i: number): number[] | undefined;
}

/** Infers one op's output types and shapes: one rule per op type, as autodiff has one gradient rule per op. */
export type ShapeRule = (context: ShapeContext) => void;
