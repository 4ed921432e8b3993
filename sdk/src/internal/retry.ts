import { AiaasError, Code } from "../errors.js";
import type { RetryOptions } from "../client-options.js";

/**
 * Runs `attempt` until it succeeds, fails with something other than UNAVAILABLE, runs out of attempts, or
 * the next backoff would pass the deadline. Backoff doubles from initialBackoffMs with full jitter.
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  policy: Required<RetryOptions>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  let backoff = policy.initialBackoffMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const e = AiaasError.from(error);
      const wait = Math.random() * backoff;
      if (e.code !== Code.UNAVAILABLE || n >= policy.maxAttempts || Date.now() + wait >= deadline || signal?.aborted) throw e;
      await new Promise((resolve) => setTimeout(resolve, wait));
      backoff = Math.min(backoff * 2, policy.maxBackoffMs);
    }
  }
}

export function retryPolicy(options: RetryOptions | undefined): Required<RetryOptions> {
  return {
    maxAttempts: Math.max(1, options?.maxAttempts ?? 4),
    initialBackoffMs: options?.initialBackoffMs ?? 50,
    maxBackoffMs: options?.maxBackoffMs ?? 2000,
  };
}
