// What machine a benchmark ran on, kept beside its raw results so a figure can be traced to its run.
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

export function machine(): Record<string, unknown> {
  const model = cpus()[0]?.model ?? "unknown";
  let flags = "";
  try {
    flags = /^flags\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "";
  } catch {
    // not Linux
  }
  const simd = ["avx512f", "avx2", "avx", "sse4_2"].filter((f) => flags.split(" ").includes(f));
  return { cpu: model, cores: cpus().length, simd, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageAtStart: loadavg() };
}
