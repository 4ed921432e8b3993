import type { Graph } from "./graph.js";

/** A parameter the graph reads in more than one place: its gradient is the sum over every use. */
export interface SharedParameter {
  readonly parameter: string;
  /** Values that read it through Identity (torch.onnx.export merges equal initializers this way). */
  readonly readAs: readonly string[];
  /** Node inputs that read it, Identity nodes followed through. */
  readonly uses: number;
}

/** The Identity nodes that pass each parameter on, followed through chains, by parameter. */
function identityReaders(g: Graph, params: ReadonlySet<string>): Map<string, string[]> {
  const rootOf = new Map<string, string>();
  for (const p of params) rootOf.set(p, p);
  const readers = new Map<string, string[]>();
  for (const node of g.nodes) {
    if (node.opType !== "Identity" || node.domain !== "") continue;
    const root = rootOf.get(node.inputs[0] ?? "");
    if (!root || !node.outputs[0]) continue;
    rootOf.set(node.outputs[0], root);
    readers.set(root, [...(readers.get(root) ?? []), node.outputs[0]]);
  }
  return readers;
}

/**
 * Parameters read by more than one node input (a layer applied twice, an embedding tied to an output
 * projection, or initializers an exporter merged because they were equal), in the order of `params`.
 */
export function sharedParameters(g: Graph, params: Iterable<string>): SharedParameter[] {
  const set = new Set(params);
  const readers = identityReaders(g, set);
  const uses = new Map<string, number>();
  const rootOf = new Map<string, string>();
  for (const [root, names] of readers) for (const n of names) rootOf.set(n, root);
  for (const p of set) rootOf.set(p, p);
  for (const node of g.nodes) {
    if (node.opType === "Identity" && rootOf.has(node.inputs[0] ?? "")) continue;
    for (const input of node.inputs) {
      const root = input ? rootOf.get(input) : undefined;
      if (root) uses.set(root, (uses.get(root) ?? 0) + 1);
    }
  }
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (const [name, root] of rootOf) if (outputs.has(name)) uses.set(root, (uses.get(root) ?? 0) + 1);
  return [...set]
    .map((p) => ({ parameter: p, readAs: readers.get(p) ?? [], uses: uses.get(p) ?? 0 }))
    .filter((s) => s.uses > 1 || s.readAs.length > 0);
}

/**
 * Gives every value that reads a parameter through Identity its own copy of the parameter's initial value,
 * under the Identity's output name: the separate parameters of the module before the exporter merged equal
 * tensors. Returns the new parameters' names. Direct uses of one initializer by several nodes stay shared: in
 * the exported module they are one tensor.
 */
export function untieSharedParameters(g: Graph, params: Iterable<string>): string[] {
  const set = new Set(params);
  const created: string[] = [];
  for (const node of [...g.nodes]) {
    if (node.opType !== "Identity" || node.domain !== "") continue;
    const source = node.inputs[0];
    const out = node.outputs[0];
    if (!source || !out || !set.has(source) || g.outputs.some((o) => o.name === out)) continue;
    const value = g.initializers.get(source)!;
    g.replaceWithConstant(node, { type: value.type, dims: [...value.dims], data: value.data.slice() });
    set.add(out);
    created.push(out);
  }
  return created;
}
