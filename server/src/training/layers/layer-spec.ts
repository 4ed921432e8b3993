/** A layer of an architecture spec: JSON-able, so a Train request can carry it. */
export type LayerSpec =
  | { readonly type: "dense"; readonly units: number }
  | { readonly type: "conv2d"; readonly filters: number; readonly kernel: number; readonly stride?: number; readonly padding?: number | "same" | "valid" }
  | { readonly type: "maxpool2d"; readonly size: number; readonly stride?: number }
  | { readonly type: "avgpool2d"; readonly size: number; readonly stride?: number }
  | { readonly type: "flatten" }
  | { readonly type: "relu" }
  | { readonly type: "tanh" }
  | { readonly type: "sigmoid" }
  | { readonly type: "gelu" }
  | { readonly type: "dropout"; readonly rate: number }
  | { readonly type: "embedding"; readonly vocab: number; readonly dim: number }
  | { readonly type: "rnn"; readonly units: number; readonly returnSequences?: boolean }
  | { readonly type: "attention"; readonly heads: number }
  | { readonly type: "layernorm"; readonly epsilon?: number }
  | {
      readonly type: "transformer";
      readonly heads: number;
      readonly feedForward: number;
      readonly dropout?: number;
      readonly activation?: "relu" | "gelu";
    }
  | { readonly type: "meanpool" };

export type LayerType = LayerSpec["type"];

export const LAYER_TYPES: readonly LayerType[] = [
  "dense",
  "conv2d",
  "maxpool2d",
  "avgpool2d",
  "flatten",
  "relu",
  "tanh",
  "sigmoid",
  "gelu",
  "dropout",
  "embedding",
  "rnn",
  "attention",
  "layernorm",
  "transformer",
  "meanpool",
];

export interface ArchitectureSpec {
  /** The model input without its batch dim, e.g. [1, 28, 28] for images or [16] for token ids. */
  readonly input: { readonly name?: string; readonly dims: readonly number[]; readonly type?: "float32" | "int64" };
  readonly layers: readonly LayerSpec[];
  /** Classification adds a `probabilities` output (softmax of `logits`). Default: classification. */
  readonly task?: "classification" | "regression";
}
