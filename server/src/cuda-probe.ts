import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGraphBuilder, encodeModel } from "./training/onnx/index.js";
import { createSessionInstance } from "./runtime/index.js";

export type CudaProbe = { readonly available: true } | { readonly available: false; readonly reason: string };

/**
 * Whether ONNX Runtime can open a session on the CUDA execution provider here: a one-node model is
 * loaded with CUDA only, in a worker thread like every session. Asked once at start-up so that one log
 * line says which provider serves, instead of one failure per model.
 */
export async function probeCuda(deviceId = 0): Promise<CudaProbe> {
  const g = createGraphBuilder();
  g.input("x", "float32", [1]);
  g.node("Identity", ["x"], { outputs: ["y"] });
  g.output("y", "float32", [1]);
  const dir = await mkdtemp(join(tmpdir(), "aiaas-cuda-probe-"));
  try {
    const path = join(dir, "probe.onnx");
    await writeFile(path, encodeModel(g.build("cuda_probe")));
    const instance = await createSessionInstance({
      modelPath: path,
      providers: ["cuda"],
      cudaDeviceId: deviceId,
      intraOpThreads: 1,
      graphOptimizationLevel: "all",
      allowSpinning: false,
      warmup: true,
    });
    await instance.close();
    return { available: true };
  } catch (error) {
    return { available: false, reason: (error instanceof Error ? error.message : String(error)).split("\n")[0].slice(0, 300) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
