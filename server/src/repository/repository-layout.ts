import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { isSafeName } from "../common/names.js";

export { checkModelName } from "../common/names.js";

export const MODEL_FILE = "model.onnx";
export const CONFIG_FILE = "config.json";

/** Model folders in the repository root (folders whose name is a valid model name). */
export async function listModelNames(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && isSafeName(e.name)).map((e) => e.name).sort();
}

/** Version folders of a model: positive integers holding a model.onnx. */
export async function listVersions(root: string, model: string): Promise<number[]> {
  const dir = join(root, model);
  const entries = await readdir(dir, { withFileTypes: true });
  const versions: number[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !/^[1-9][0-9]{0,8}$/.test(e.name)) continue;
    try {
      if ((await stat(join(dir, e.name, MODEL_FILE))).isFile()) versions.push(Number(e.name));
    } catch {
      // a version folder without model.onnx (e.g. being written) is not a version yet
    }
  }
  return versions.sort((a, b) => a - b);
}

export async function modelExists(root: string, model: string): Promise<boolean> {
  try {
    return (await stat(join(root, model))).isDirectory();
  } catch {
    return false;
  }
}

/** The parsed JSON of config.json, or undefined when the model has none. */
export async function readConfigJson(root: string, model: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(join(root, model, CONFIG_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`config.json is not valid JSON: ${(error as Error).message}`);
  }
}

export function modelPath(root: string, model: string, version: number): string {
  return join(root, model, String(version), MODEL_FILE);
}
