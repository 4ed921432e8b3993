import type { Logger } from "pino";
import { InlineLane, type ModelSignature } from "../batching/index.js";
import type { ModelConfig } from "../repository/index.js";
import { inlineIneligibility, openInlineSession, type InlineSession, type ProviderName, type RuntimeOptions } from "../runtime/index.js";

/** A probe this many times over the budget closes the main-thread session at once. */
const PROBE_GIVE_UP = 4;

/**
 * A version's inline lane when its config allows one and its one-row run, timed on the main thread, is near
 * the budget (the lane itself decides, run by run, whether it fits); undefined (said in the log) otherwise.
 * A model the probe cannot run is served from workers only.
 */
export async function openInlineLane(
  path: string,
  options: RuntimeOptions,
  provider: ProviderName,
  signature: ModelSignature,
  config: ModelConfig,
  label: string,
  logger: Logger,
): Promise<{ lane: InlineLane; session: InlineSession } | undefined> {
  const budgetUs = config.inlineRunBudgetUs;
  if (budgetUs <= 0) return undefined;
  const why = await inlineIneligibility(path, provider);
  if (why) {
    logger.debug({ model: label }, `${label} runs on workers only: ${why}`);
    return undefined;
  }
  let session: InlineSession;
  try {
    session = await openInlineSession(path, options, signature.inputs, PROBE_GIVE_UP * budgetUs);
  } catch (error) {
    logger.debug({ model: label }, `${label} runs on workers only: its probe run failed (${(error as Error).message.split("\n")[0]})`);
    return undefined;
  }
  const probe = Math.round(session.probeRunUs);
  // Far over the budget is the model itself; a probe slowed by other loads is corrected by the first runs.
  if (session.probeRunUs > PROBE_GIVE_UP * budgetUs) {
    await session.close();
    logger.info({ model: label, probeRunUs: probe }, `${label} runs on workers only: a one-row run takes ${probe} µs, over inline_run_budget_us (${budgetUs})`);
    return undefined;
  }
  const lane = new InlineLane(session, {
    probeRunUs: session.probeRunUs,
    budgetUs,
    learnsFromWorkers: config.threads === 1,
    onChange: (fits, estimateUs) =>
      logger.debug({ model: label, estimateUs: Math.round(estimateUs) }, `${label}: a one-row run takes ${Math.round(estimateUs)} µs; ${fits ? "an idle server runs it on the main thread" : "it runs on workers only"}`),
  });
  logger.info({ model: label, probeRunUs: probe }, `${label} can run requests of an idle server on the main thread (a one-row run took ${probe} µs; budget ${budgetUs} µs)`);
  return { lane, session };
}
