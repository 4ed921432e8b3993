import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { parse as parseYaml } from "yaml";
import { invalidArgument } from "../common/errors.js";

/** A config file's settings: YAML (.yaml, .yml) or JSON, one mapping of setting names to values. */
export async function readConfigFile(path: string): Promise<{ name: string; values: Record<string, unknown> }> {
  const text = await readFile(path, "utf8");
  const name = basename(path);
  let values: unknown;
  try {
    values = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw invalidArgument(`${name} is not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(error as Error).message.split("\n")[0]}`);
  }
  if (values === null || values === undefined) return { name, values: {} };
  if (typeof values !== "object" || Array.isArray(values)) throw invalidArgument(`${name} must hold a mapping of settings (e.g. port: 50051)`);
  return { name, values: values as Record<string, unknown> };
}
