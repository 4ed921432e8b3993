/**
 * Fault injection for tests: with AIAAS_TEST_HOOKS=1 and AIAAS_CRASH_AT=<name>, the server sends itself
 * SIGKILL when it reaches the named point, so a test can kill it at a moment no outside timing hits reliably
 * (between writing a version and recording it, say). Without both variables it does nothing.
 */
export function crashPoint(name: string): void {
  if (process.env.AIAAS_TEST_HOOKS === "1" && process.env.AIAAS_CRASH_AT === name) process.kill(process.pid, "SIGKILL");
}
