import type { ResolvedLimits } from "../auth/index.js";

/**
 * Every default of `aiaas serve` and `startServer`, defined once: the library applies them to options left
 * out, and the CLI shows and passes the same values.
 */
export const SERVE_DEFAULTS = {
  port: 50051,
  /** The library listens on loopback unless told otherwise; the CLI's `serve` listens on every interface. */
  host: "127.0.0.1",
  cliHost: "0.0.0.0",
  httpPort: 8000,
  threads: 1,
  maxMessageBytes: 64 * 1024 * 1024,
  maxQueueSize: 4096,
  maxStreamInflight: 1024,
  shutdownGraceMs: 10_000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  training: { maxConcurrentJobs: 1, threads: 1, maxDataBytes: 1024 ** 3 },
} as const;

/** Limits for tenants and keys that set none. */
export const DEFAULT_LIMITS: ResolvedLimits = {
  requestsPerSecond: 1000,
  burst: 2000,
  maxInFlight: 256,
  maxConcurrentJobs: 2,
  maxTrainDataBytes: 1024 ** 3,
};
