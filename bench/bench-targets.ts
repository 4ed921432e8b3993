// The two processes the serving benchmarks measure: the server as `aiaas serve` runs it (operations port on,
// CPU only) over a fixtures repository, and the plain grpc-js echo server; with how each says where it listens.
import { join, resolve } from "node:path";

/** `aiaas serve` of the build in `build` over `<work>/models`, on free ports. */
export function serverArgv(build: string, work: string): string[] {
  return [resolve(build, "server/dist/bin/aiaas.js"), "serve", "--models", join(work, "models"), "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu"];
}

export const ECHO_ARGV: readonly string[] = ["--import", "tsx", "bench/echo-server.ts"];

/** The server's "listening" log line names its address. */
export const serverAddress = (entry: Record<string, unknown>): string | undefined => entry.address as string | undefined;

/** The echo server prints its port. */
export const echoAddress = (entry: Record<string, unknown>): string | undefined => (entry.port ? `127.0.0.1:${entry.port}` : undefined);
