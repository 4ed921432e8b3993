import type ort from "onnxruntime-node";
import type { ProviderName } from "./execution-providers.js";

/** How a session runs: every ONNX Runtime session of serving and training is made from one of these. */
export interface RuntimeOptions {
  /** In order of preference; the last one that fails to load the model fails it. */
  readonly providers: readonly ProviderName[];
  readonly cudaDeviceId: number;
  readonly intraOpThreads: number;
  readonly graphOptimizationLevel: "disabled" | "basic" | "extended" | "all";
  /** Spinning ORT threads steal the cores gRPC needs; off unless a model's config asks. */
  readonly allowSpinning: boolean;
}

/** The one place that knows ONNX Runtime's session options. */
export function sessionOptions(provider: ProviderName, options: RuntimeOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === "cuda" ? [{ name: "cuda", deviceId: options.cudaDeviceId } as ort.InferenceSession.ExecutionProviderConfig, "cpu"] : ["cpu"],
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: options.graphOptimizationLevel,
    extra: { session: { intra_op: { allow_spinning: options.allowSpinning ? "1" : "0" } } },
  };
}

/**
 * Opens sessions on the first provider that can: a provider that fails (CUDA missing, out of memory) falls
 * back to the next with its reason kept for the log; a model that cannot load on the last provider is broken,
 * not a provider problem, and its error is thrown.
 */
export async function openWithFallback<T>(
  options: RuntimeOptions,
  open: (sessionOptions: ort.InferenceSession.SessionOptions) => Promise<T>,
): Promise<{ value: T; provider: ProviderName; fallbackReason?: string }> {
  let fallbackReason: string | undefined;
  for (const provider of options.providers) {
    try {
      return { value: await open(sessionOptions(provider, options)), provider, fallbackReason };
    } catch (error) {
      if (provider === options.providers[options.providers.length - 1]) throw error;
      const message = error instanceof Error ? error.message : String(error);
      fallbackReason = `${provider} unavailable: ${message.split("\n")[0]!.slice(0, 300)}`;
    }
  }
  throw new Error("no execution provider configured");
}
