/** Execution providers an operator can ask for, in order of preference. */
export type ProviderName = "cuda" | "cpu";

export const PROVIDER_NAMES: readonly ProviderName[] = ["cuda", "cpu"];

/** Parses "cuda,cpu" into a checked list; CPU is appended when missing so a model can always run. */
export function parseProviders(value: string | readonly string[]): ProviderName[] {
  const names = (typeof value === "string" ? value.split(",") : value).map((s) => s.trim().toLowerCase()).filter(Boolean);
  const out: ProviderName[] = [];
  for (const name of names) {
    if (!(PROVIDER_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown execution provider "${name}" (known: ${PROVIDER_NAMES.join(", ")})`);
    }
    if (!out.includes(name as ProviderName)) out.push(name as ProviderName);
  }
  if (!out.includes("cpu")) out.push("cpu");
  return out;
}
