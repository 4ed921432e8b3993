// @aiaas/sdk — the typed client grows here (issue 3); today it exposes the generated contract.
export * from "./protocol.js";
