import type { ModelProto } from "onnx-buf";
import type { JobPrepared } from "@aiaas/sdk/gen";
import { invalidArgument } from "../../common/errors.js";
import { modelPath } from "../../repository/index.js";
import type { ModelRegistry } from "../../serving/index.js";
import { ArchitectureError, buildArchitecture } from "../layers/build-architecture.js";
import { readModelFile } from "../onnx/model-file.js";
import { Graph } from "../onnx/graph.js";
import { buildTrainProgram, type TrainProgram } from "../engine/train-program.js";
import type { DataSpec } from "./job-data.js";
import type { JobSpec } from "./job-spec.js";

/** What a job trains, built from its spec: the forward graph, the train-step program and the data it takes. */
export interface JobPlan {
  readonly forward: ModelProto;
  readonly program: TrainProgram;
  readonly dataSpec: DataSpec;
  /** The base model's version the graph came from ("" for an architecture): a restarted job uses the same. */
  readonly baseVersion: string;
}

/** Builds a job's plan; a spec that cannot train is INVALID_ARGUMENT naming why. */
export async function planJob(spec: JobSpec, registry: ModelRegistry, pinnedBaseVersion?: string): Promise<JobPlan> {
  const { forward, baseVersion } = await forwardModel(spec, registry, pinnedBaseVersion);
  const outputs = forward.graph?.output.map((o) => o.name) ?? [];
  if (!outputs.includes(spec.output)) {
    throw invalidArgument(`the model has no output "${spec.output}" (its outputs: ${outputs.map((o) => `"${o}"`).join(", ")}); set spec.output`);
  }
  const program = trainProgramFor(spec, forward);
  // The prepared graph (a new head, an upgraded opset …) says how many classes the labels may name.
  return { forward, program, dataSpec: dataSpecOf(program, program.forward, spec), baseVersion };
}

/** The graph a job trains: built from its architecture, or read from the base model it names. */
async function forwardModel(spec: JobSpec, registry: ModelRegistry, pinned?: string): Promise<{ forward: ModelProto; baseVersion: string }> {
  if (spec.source.kind === "architecture") {
    try {
      return { forward: buildArchitecture(spec.source.architecture, { seed: spec.seed, name: spec.model }), baseVersion: "" };
    } catch (error) {
      if (error instanceof ArchitectureError) throw invalidArgument(error.message);
      throw error;
    }
  }
  const loaded = registry.resolve(spec.source.name, pinned ?? spec.source.version);
  return { forward: await readModelFile(modelPath(registry.root, loaded.model, loaded.version)), baseVersion: String(loaded.version) };
}

function dataSpecOf(program: TrainProgram, forward: ModelProto, spec: JobSpec): DataSpec {
  const inputs = program.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims.slice(1) }));
  const out = Graph.fromModel(forward).outputs.find((o) => o.name === spec.output)!;
  if (spec.task === "classification") {
    const classes = out.dims?.[1];
    if (out.dims?.length !== 2 || typeof classes !== "number") {
      throw invalidArgument(`output "${spec.output}" has shape [${out.dims?.join(", ") ?? "?"}]: classification needs [batch, classes] logits with a fixed class count`);
    }
    return { inputs, labels: { kind: "classes", classes } };
  }
  return { inputs, labels: { kind: "target", target: { name: "labels", type: out.type, dims: (out.dims ?? []).slice(1) } } };
}

/** The job's first event: what it trains, what is frozen or shared, and what preparing the model changed. */
export function preparedEvent(program: TrainProgram): JobPrepared {
  const elements = program.params.reduce((n, p) => n + p.dims.reduce<number>((a, d) => a * (typeof d === "number" ? d : 1), 1), 0);
  return {
    trainedTensors: program.params.length,
    trainedElements: BigInt(elements),
    frozen: [...program.frozen],
    shared: program.shared.map((s) => ({ parameter: s.parameter, readAs: [...s.readAs], uses: s.uses })),
    notes: [...program.notes],
    unreached: [...program.unreached],
  };
}

/** The train-step program of a job's graph: its loss, optimizer and frozen parameters. */
function trainProgramFor(spec: JobSpec, forward: ModelProto): TrainProgram {
  try {
    const base = spec.source.kind === "base" ? spec.source : undefined;
    return buildTrainProgram(forward, {
      loss: { kind: spec.task === "classification" ? "cross-entropy" : "mse", output: spec.output },
      optimizer: spec.optimizer,
      freeze: base?.freeze ?? [],
      untieSharedParameters: base?.untieSharedParameters ?? false,
      freezeBatchnorm: base?.freezeBatchnorm ?? false,
      head: base?.headClasses ? { classes: base.headClasses, seed: spec.seed } : undefined,
      inputDims: base?.inputDims,
    });
  } catch (error) {
    const what = spec.source.kind === "base" ? `base model "${spec.source.name}"` : "the architecture";
    throw invalidArgument(`${what} cannot be trained: ${(error as Error).message}`);
  }
}
