import type { Logger } from "pino";
import type { Caller } from "./caller.js";

export interface AuditEntry {
  readonly action: string;
  readonly outcome: "allowed" | "denied";
  readonly caller?: Pick<Caller, "keyId" | "tenant">;
  readonly peer?: string;
  readonly reason?: string;
  readonly target?: string;
}

/** One JSON line per admin action and per denied call: who, what, when, why. Never a key's secret or a payload. */
export interface AuditLog {
  record(entry: AuditEntry): void;
}

/** One JSON line per entry on `logger`; with `store`, each entry is kept in the state database too. */
export function createAuditLog(logger: Logger, store?: { add(entry: AuditEntry): void }): AuditLog {
  const audit = logger.child({ audit: true });
  return {
    record(entry) {
      store?.add(entry);
      const line = {
        action: entry.action,
        outcome: entry.outcome,
        keyId: entry.caller?.keyId,
        tenant: entry.caller?.tenant,
        peer: entry.peer,
        target: entry.target,
        reason: entry.reason,
      };
      if (entry.outcome === "denied") audit.warn(line, `denied ${entry.action}: ${entry.reason ?? ""}`);
      else audit.info(line, `${entry.action}${entry.target ? ` ${entry.target}` : ""}`);
    },
  };
}
