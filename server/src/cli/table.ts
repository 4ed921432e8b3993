/** Rows under a header, columns padded to their widest cell (the last column is not padded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [header, ...rows].map(line).join("\n");
}

/** JSON with bigints as strings, as grpcurl prints 64-bit integers. */
export const toJson = (value: unknown, indent?: number): string => JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), indent);

/** Help text after a command's options: runnable examples, as kubectl and docker show them. */
export const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}`;
