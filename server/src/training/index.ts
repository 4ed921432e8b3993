// The training engine: ONNX graph IR, autodiff, train-step programs, layers and the runner.
export { Graph } from "./onnx/graph.js";
export type { GraphNode, ValueType } from "./onnx/graph.js";
export { foldConstants } from "./onnx/constant-folding.js";
export { encodeModel, decodeModel, readModelFile, writeModelFile } from "./onnx/model-file.js";
export { appendBackward } from "./autodiff/backward.js";
export type { Backward } from "./autodiff/backward.js";
export { gradientRules } from "./autodiff/gradient-registry.js";
export type { GradientRule, GradientContext } from "./autodiff/gradient-rule.js";
export { buildTrainProgram, buildGradientModel, bakeWeights, TRAINING_FLAG } from "./engine/train-program.js";
export type { TrainProgram, TrainProgramOptions, TensorSpec } from "./engine/train-program.js";
export type { OptimizerSpec } from "./engine/optimizer.js";
export type { LossSpec } from "./engine/loss-head.js";
export { createTrainRunner } from "./engine/train-runner.js";
export type { TrainRunner, TrainRunnerOptions } from "./engine/train-runner.js";
export type { HostTensor, StepResult, TrainState } from "./engine/train-worker-protocol.js";
export { buildArchitecture, ArchitectureError } from "./layers/build-architecture.js";
export type { ArchitectureSpec, LayerSpec, LayerType } from "./layers/layer-spec.js";
export { LAYER_TYPES } from "./layers/layer-spec.js";
