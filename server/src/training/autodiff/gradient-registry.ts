import type { GradientRule } from "./gradient-rule.js";
import { activationRules } from "./rules/activations.js";
import { convolutionRules } from "./rules/convolution.js";
import { elementwiseRules } from "./rules/elementwise.js";
import { linearAlgebraRules } from "./rules/linear-algebra.js";
import { lossRules } from "./rules/losses.js";
import { normalizationRules } from "./rules/normalization.js";
import { poolingRules } from "./rules/pooling.js";
import { reductionRules } from "./rules/reductions.js";
import { resamplingRules } from "./rules/resampling.js";
import { shapeRules } from "./rules/shape-ops.js";

/** Gradient rules by ONNX op type (default domain). */
export const gradientRules: ReadonlyMap<string, GradientRule> = new Map(
  Object.entries({
    ...elementwiseRules,
    ...activationRules,
    ...linearAlgebraRules,
    ...convolutionRules,
    ...poolingRules,
    ...shapeRules,
    ...reductionRules,
    ...resamplingRules,
    ...normalizationRules,
    ...lossRules,
  }),
);

/** Ops whose outputs carry no gradient whatever their inputs (integer, boolean or shape results). */
export const nonDifferentiable: ReadonlySet<string> = new Set([
  "Shape",
  "Size",
  "Equal",
  "Greater",
  "Less",
  "GreaterOrEqual",
  "LessOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "ArgMax",
  "ArgMin",
  "NonZero",
  "ConstantOfShape",
  "Range",
  "IsNaN",
  "IsInf",
  "Sign",
  "Floor",
  "Ceil",
  "Round",
  "OneHot",
]);
