import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { Code, ServerError } from "../common/errors.js";

/**
 * What a client may see of an error: its code and message, except that internal error text never leaves the
 * server. An INTERNAL error is logged with an incident id, and the client gets a generic message with that id,
 * which finds the details in the log.
 */
export function publicError(error: unknown, logger: Logger, method: string): ServerError {
  const e = ServerError.from(error);
  if (e.code !== Code.INTERNAL) return e;
  const incident = randomUUID().slice(0, 8);
  logger.error({ err: error, method, incident }, `internal error in ${method} (incident ${incident})`);
  return new ServerError(Code.INTERNAL, `internal error (incident ${incident}; the server's log has the details)`);
}
