// CPU time of a process from /proc (Linux): user + system, split into its main thread and all its other
// threads (worker threads, ONNX Runtime's pools, libuv, V8's helpers). Ticks are 1/100 s.
import { readFileSync } from "node:fs";

export interface CpuTimes {
  /** Seconds, the whole process (threads that ended included). */
  readonly total: number;
  /** Seconds, the main thread (the event loop) alone. */
  readonly main: number;
}

const TICKS_PER_SECOND = 100;

/** utime + stime of a /proc stat file, in seconds. */
function statSeconds(path: string): number {
  // The command name may hold spaces: fields are counted from the ") " that ends it.
  const fields = readFileSync(path, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export function cpuTimes(pid: number): CpuTimes {
  return { total: statSeconds(`/proc/${pid}/stat`), main: statSeconds(`/proc/${pid}/task/${pid}/stat`) };
}

/** CPU used between two readings. */
export function cpuSince(pid: number, before: CpuTimes): CpuTimes {
  const now = cpuTimes(pid);
  return { total: now.total - before.total, main: now.main - before.main };
}
