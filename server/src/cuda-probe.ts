import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createGraphBuilder, encodeModel } from "./training/onnx/index.js";
import { createSessionInstance } from "./runtime/index.js";

export type CudaProbe = { readonly available: true } | { readonly available: false; readonly reason: string };

/**
 * Whether ONNX Runtime can open a session on the CUDA execution provider here: a one-node model is
 * loaded with CUDA only, in a worker thread like every session. Asked once at start-up so that one log
 * line says which provider serves, instead of one failure per model.
 */
export async function probeCuda(deviceId = 0): Promise<CudaProbe> {
  // Without the provider libraries ONNX Runtime would print its own red error on stderr before failing;
  // the one warning line of the caller says it better.
  const missing = await missingCudaLibraries();
  if (missing) return { available: false, reason: missing };
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

/** Why ONNX Runtime's CUDA provider cannot load here, judged from its files alone; undefined when they are there. */
async function missingCudaLibraries(): Promise<string | undefined> {
  const target = `${platform()}/${arch()}`;
  if (target !== "linux/x64" && target !== "win32/x64") return `onnxruntime-node has no CUDA build for ${target}`;
  let bin: string;
  try {
    // <package>/dist/index.js -> <package>/bin/napi-v6/<platform>/<arch>, where the binding and providers live.
    bin = join(dirname(dirname(createRequire(import.meta.url).resolve("onnxruntime-node"))), "bin", "napi-v6", platform(), arch());
  } catch {
    return undefined; // an unusual layout: let ONNX Runtime itself say
  }
  const library = platform() === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  try {
    await access(join(bin, library));
    return undefined;
  } catch {
    return `ONNX Runtime's CUDA provider is not installed (${library} is not beside the binding; the README's CUDA section installs it)`;
  }
}
