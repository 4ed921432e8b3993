// Small real ONNX models the tests serve, built with the project's graph IR.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelProto } from "onnx-buf";
import { createGraphBuilder, encodeModel } from "../../server/src/training/onnx/index.js";
import { buildMnistCnn } from "../../scripts/model-zoo.js";
import { seededRandom } from "../../scripts/seeded-random.js";

/** y = x * 2 + [1, 2, 3, 4]; z = x * 2. */
export function affineModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "float32", ["batch", 4]);
  g.initializer("two", { type: "float32", dims: [], data: new Float32Array([2]) });
  g.initializer("b", { type: "float32", dims: [4], data: new Float32Array([1, 2, 3, 4]) });
  g.node("Mul", ["x", "two"], { outputs: ["z"] });
  g.node("Add", ["z", "b"], { outputs: ["y"] });
  g.output("y", "float32", ["batch", 4]);
  g.output("z", "float32", ["batch", 4]);
  return g.build("affine");
}

/** Sums each row of a variable-length sequence: x [batch, len] -> y [batch, 1]. */
export function seqSumModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "float32", ["batch", "len"]);
  g.initializer("axes", { type: "int64", dims: [1], data: new BigInt64Array([1n]) });
  g.node("ReduceSum", ["x", "axes"], { outputs: ["y"], attrs: { keepdims: 1 } });
  g.output("y", "float32", ["batch", 1]);
  return g.build("seq_sum");
}

/** y = x * 3 on int64. */
export function intScaleModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "int64", ["batch", 3]);
  g.initializer("three", { type: "int64", dims: [], data: new BigInt64Array([3n]) });
  g.node("Mul", ["x", "three"], { outputs: ["y"] });
  g.output("y", "int64", ["batch", 3]);
  return g.build("int_scale");
}

/** y = not x on booleans. */
export function notModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "bool", ["batch", 2]);
  g.node("Not", ["x"], { outputs: ["y"] });
  g.output("y", "bool", ["batch", 2]);
  return g.build("not");
}

/** y = x + 0.5 on float16. */
export function halfModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "float16", ["batch", 2]);
  g.initializer("half", { type: "float16", dims: [], data: new Uint16Array([0x3800]) }); // 0.5
  g.node("Add", ["x", "half"], { outputs: ["y"] });
  g.output("y", "float16", ["batch", 2]);
  return g.build("half");
}

/** A model without a batch dimension: y = x @ [[1, 2], [3, 4]] with x [2, 2]. */
export function fixedMatmulModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "float32", [2, 2]);
  g.initializer("w", { type: "float32", dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
  g.node("MatMul", ["x", "w"], { outputs: ["y"] });
  g.output("y", "float32", [2, 2]);
  return g.build("fixed_matmul");
}

/** Embedding lookup: ids [batch, 1] into a 5x2 table; an id out of range fails in ONNX Runtime. */
export function gatherModel(): ModelProto {
  const g = createGraphBuilder();
  g.input("ids", "int64", ["batch", 1]);
  g.initializer("table", { type: "float32", dims: [5, 2], data: new Float32Array([0, 1, 10, 11, 20, 21, 30, 31, 40, 41]) });
  g.node("Gather", ["table", "ids"], { outputs: ["y"], attrs: { axis: 0 } });
  g.output("y", "float32", ["batch", 1, 2]);
  return g.build("gather");
}

/**
 * A deliberately slow model for queueing, deadline and reload tests: each row is broadcast to 256 copies and
 * pushed through `layers` identity MatMuls (512x512), then averaged back, so y equals x.
 */
export function slowModel(layers = 200): ModelProto {
  const g = createGraphBuilder();
  g.input("x", "float32", ["batch", 512]);
  const w = new Float32Array(512 * 512);
  for (let i = 0; i < 512; i++) w[i * 512 + i] = 1;
  g.initializer("w", { type: "float32", dims: [512, 512], data: w });
  g.initializer("axis1", { type: "int64", dims: [1], data: new BigInt64Array([1n]) });
  g.initializer("wide", { type: "int64", dims: [3], data: new BigInt64Array([1n, 256n, 512n]) });
  const [u] = g.node("Unsqueeze", ["x", "axis1"]);
  let value = g.node("Expand", [u, "wide"])[0];
  for (let i = 0; i < layers; i++) value = g.node("MatMul", [value, "w"])[0];
  g.node("ReduceMean", [value], { outputs: ["y"], attrs: { axes: [1], keepdims: 0 } });
  g.output("y", "float32", ["batch", 512]);
  return g.build("slow");
}

export { buildMnistCnn };

export interface FixtureModel {
  readonly model: ModelProto | Uint8Array;
  readonly config?: object;
  readonly versions?: readonly number[];
}

/** Writes models into `<root>/<name>/<version>/model.onnx` with their config.json. */
export async function writeRepository(root: string, models: Record<string, FixtureModel>): Promise<void> {
  for (const [name, fixture] of Object.entries(models)) {
    const bytes = fixture.model instanceof Uint8Array ? fixture.model : encodeModel(fixture.model);
    for (const version of fixture.versions ?? [1]) {
      await mkdir(join(root, name, String(version)), { recursive: true });
      await writeFile(join(root, name, String(version), "model.onnx"), bytes);
    }
    if (fixture.config) await writeFile(join(root, name, "config.json"), JSON.stringify(fixture.config));
  }
}

/** A 28×28 image of seeded noise in [0, 1): the seed CNN's input, the same for the same seed. */
export function seededImage(seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: 784 }, () => random());
}
