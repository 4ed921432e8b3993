import { invalidArgument } from "../common/errors.js";
import { parseProviders, type ProviderName } from "../runtime/index.js";

/** Turns a value from a flag, the environment (strings) or a config file (JSON/YAML values) into a setting's type. */
export type Parser<T> = (raw: unknown, where: string) => T;

const bad = (where: string, raw: unknown, expected: string): never => {
  throw invalidArgument(`${where} ${JSON.stringify(raw)}: expected ${expected}`);
};

export const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (raw, where) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) return bad(where, raw, max < Number.MAX_SAFE_INTEGER ? `an integer from ${min} to ${max}` : `an integer >= ${min}`);
    return n;
  };

export const optionalInteger = (min: number): Parser<number | undefined> => {
  const parse = integer(min);
  return (raw, where) => (raw === undefined || raw === "" ? undefined : parse(raw, where));
};

/** "auto" (one per core) or a count from 1. */
export const processCount: Parser<number | "auto"> = (raw, where) => (raw === "auto" ? "auto" : integer(1, 256)(raw, where));

export const text: Parser<string> = (raw, where) => (typeof raw === "string" && raw !== "" ? raw : bad(where, raw, "a non-empty string"));

export const optionalText: Parser<string | undefined> = (raw, where) => (raw === undefined || raw === "" ? undefined : text(raw, where));

export const flag: Parser<boolean> = (raw, where) => {
  if (typeof raw === "boolean") return raw;
  if (typeof raw === "string" && /^(1|true|yes|on)$/i.test(raw)) return true;
  if (typeof raw === "string" && /^(0|false|no|off)$/i.test(raw)) return false;
  return bad(where, raw, "true or false");
};

export const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw, where) =>
    typeof raw === "string" && (values as readonly string[]).includes(raw) ? (raw as T) : bad(where, raw, `one of ${values.join(", ")}`);

/** "auto", or providers in order of preference ("cuda,cpu" or a list); CPU is always added last. */
export const providers: Parser<"auto" | ProviderName[]> = (raw, where) => {
  if (raw === "auto") return "auto";
  if (typeof raw !== "string" && !Array.isArray(raw)) return bad(where, raw, '"auto" or a list such as "cuda,cpu"');
  try {
    return parseProviders(raw as string | string[]);
  } catch (error) {
    throw invalidArgument(`${where}: ${(error as Error).message}`);
  }
};
