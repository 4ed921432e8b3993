/**
 * The Prometheus text of several processes as one scrape: each sample gains a `process` label (its index),
 * and each metric family's HELP and TYPE appear once, with every process's samples under it, so a query sums
 * over processes (`sum without (process) (...)`) as it would over pods.
 */
export function mergePrometheusText(parts: readonly { readonly process: string; readonly text: string }[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  const familyOf = (name: string): { meta: string[]; samples: string[] } => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { meta: [], samples: [] }));
    return f;
  };
  for (const { process, text } of parts) {
    let current = "";
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        current = meta[2]!;
        const f = familyOf(current);
        if (!f.meta.some((m) => m.startsWith(`# ${meta[1]} `))) f.meta.push(line);
        continue;
      }
      if (line.startsWith("#")) continue;
      const name = /^[^{\s]+/.exec(line)![0];
      // A sample belongs to the family declared above it (histograms add _bucket, _sum and _count).
      const family = current && name.startsWith(current) ? current : name;
      familyOf(family).samples.push(withLabel(line, name, `process="${process}"`));
    }
  }
  let out = "";
  for (const f of families.values()) out += [...f.meta, ...f.samples].join("\n") + "\n";
  return out;
}

function withLabel(line: string, name: string, label: string): string {
  const rest = line.slice(name.length);
  if (rest.startsWith("{}")) return `${name}{${label}}${rest.slice(2)}`;
  if (rest.startsWith("{")) return `${name}{${label},${rest.slice(1)}`;
  return `${name}{${label}}${rest}`;
}
