import { invalidArgument } from "./errors.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True for a name that may become a folder name: model and tenant names both do. */
export const isSafeName = (name: string): boolean => NAME.test(name) && !name.includes("..");

/** Model names become folder names: a fixed character set, so no name can reach outside the repository. */
export function checkModelName(name: string): string {
  if (!isSafeName(name)) {
    throw invalidArgument(`invalid model name ${JSON.stringify(name.slice(0, 140))}: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return name;
}
