import { AiaasError, Code } from "./errors.js";

/** The keys each part of a TrainSpecInput may have: a misspelt key must not be ignored into a wrong model. */
const SPEC = ["model", "architecture", "baseModel", "task", "output", "optimizer", "batchSize", "epochs", "seed", "validationFraction", "earlyStopping", "maxSteps", "maxSeconds", "checkpointIntervalSteps", "metricsIntervalSteps", "idempotencyKey", "resumeFrom"];
const PARTS: Record<string, readonly string[]> = {
  architecture: ["input", "layers"],
  "architecture.input": ["name", "dims", "type"],
  baseModel: ["name", "version", "freeze", "untieSharedParameters", "freezeBatchnorm", "head", "inputDims"],
  "baseModel.head": ["classes"],
  optimizer: ["type", "learningRate", "weightDecay", "momentum", "nesterov", "beta1", "beta2", "epsilon"],
  earlyStopping: ["metric", "patience", "minDelta"],
};
const LAYERS: Record<string, readonly string[]> = {
  dense: ["units"],
  conv2d: ["filters", "kernel", "stride", "padding"],
  maxpool2d: ["size", "stride"],
  avgpool2d: ["size", "stride"],
  flatten: [],
  relu: [],
  tanh: [],
  sigmoid: [],
  gelu: [],
  meanpool: [],
  dropout: ["rate"],
  embedding: ["vocab", "dim"],
  rnn: ["units", "returnSequences"],
  attention: ["heads"],
  layernorm: ["epsilon"],
  transformer: ["heads", "feedForward", "dropout", "activation"],
};

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function checkKeys(value: unknown, allowed: readonly string[], where: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return;
  for (const key of Object.keys(value)) {
    if (allowed.includes(key) || (value as Record<string, unknown>)[key] === undefined) continue;
    const near = allowed.filter((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 2).sort((x, y) => distance(x, key) - distance(y, key))[0];
    throw new AiaasError(Code.INVALID_ARGUMENT, `${where}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known: ${allowed.join(", ")}`);
  }
}

/** Refuses a spec with a key the server would not read (as JSON from a file or an untyped caller may carry). */
export function checkTrainSpecKeys(spec: unknown): void {
  checkKeys(spec, SPEC, "spec");
  const s = spec as Record<string, unknown>;
  for (const [part, keys] of Object.entries(PARTS)) {
    const value = part.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], s);
    checkKeys(value, keys, `spec.${part}`);
  }
  const layers = (s.architecture as { layers?: unknown } | undefined)?.layers;
  if (Array.isArray(layers)) {
    layers.forEach((layer: unknown, i) => {
      const type = (layer as { type?: unknown } | null)?.type;
      if (typeof type === "string" && LAYERS[type]) checkKeys(layer, ["type", ...LAYERS[type]!], `spec.architecture.layers[${i}] (${type})`);
    });
  }
}
