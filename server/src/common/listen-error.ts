import { failedPrecondition, invalidArgument, unavailable, type ServerError } from "./errors.js";

/** A failed listen as one line a user can act on: which address, why, and what to do. */
export function listenError(error: unknown, host: string, port: number, flag: string): ServerError {
  const code = (error as NodeJS.ErrnoException).code;
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  switch (code) {
    case "EADDRINUSE":
      return unavailable(`cannot listen on ${where}: the port is in use (another aiaas, or another program); stop it or pick another port with ${flag}`);
    case "EACCES":
      return failedPrecondition(`cannot listen on ${where}: permission denied (ports below 1024 need privileges); pick another port with ${flag}`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return invalidArgument(`cannot listen on ${where}: ${host} is not an address of this machine; use --host 0.0.0.0 or one of its addresses`);
    default:
      return unavailable(`cannot listen on ${where}: ${(error as Error).message}`);
  }
}
