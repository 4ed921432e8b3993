// The Prometheus text exposition format (0.0.4), parsed strictly into families the way prom2json does:
// every line is a comment (HELP, TYPE, UNIT, EOF) or a sample `name{label="value",…} value [timestamp]`;
// names and label names follow the grammar, label values are quoted with \\ \" \n escapes, values are
// floats (NaN, ±Inf). Families must be declared by TYPE before their samples; a histogram's samples per
// label set must have cumulative buckets, a +Inf bucket equal to _count, and a _sum. (The npm parser
// parse-prometheus-text-format was tried: it drops histogram labels and _count when _count comes first, as
// OpenTelemetry's exporter writes it.)

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function number(text: string, line: number): number {
  if (text === "NaN") return NaN;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: "${text}" is not a number`);
  return Number(text);
}

function labelsOf(body: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = body;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`line ${line}: bad label list {${body}}`);
    if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]!] = m[2]!.replace(/\\(["\\n])/g, (_s, c: string) => (c === "n" ? "\n" : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

/** The family a sample belongs to: a histogram's _bucket, _sum and _count, a counter's name itself. */
function familyOf(families: Map<string, Family>, name: string): Family | undefined {
  for (const suffix of ["", "_bucket", "_sum", "_count", "_total", "_created"]) {
    if (suffix && !name.endsWith(suffix)) continue;
    const f = families.get(suffix ? name.slice(0, -suffix.length) : name);
    if (f) return f;
  }
  return undefined;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name.endsWith("_bucket")) entry.buckets.push([number(le ?? "", 0), s.value]);
    else if (s.name.endsWith("_count")) entry.count = s.value;
    else if (s.name.endsWith("_sum")) entry.sum = s.value;
  }
  for (const [key, e] of series) {
    e.buckets.sort((a, b) => a[0] - b[0]);
    e.buckets.forEach(([le, c], i) => {
      if (i > 0 && c < e.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: bucket le=${le} holds ${c}, fewer than the one below`);
    });
    const inf = e.buckets.find(([le]) => le === Infinity)?.[1];
    if (inf === undefined || inf !== e.count) throw new Error(`${f.name}${key}: the +Inf bucket (${inf}) is not _count (${e.count})`);
    if (e.sum === undefined) throw new Error(`${f.name}${key}: no _sum`);
  }
}

/** Parses an exposition; throws naming the first line or family that is not valid. */
export function parseExposition(text: string): Family[] {
  const families = new Map<string, Family>();
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (raw === "" || raw === "# EOF") return;
    const meta = new RegExp(`^# (HELP|TYPE|UNIT) (${NAME})(?: (.*))?$`).exec(raw);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string | undefined];
      const f = families.get(name) ?? { name, type: "untyped", help: "", samples: [] };
      families.set(name, kind === "TYPE" ? { ...f, type: rest ?? "" } : kind === "HELP" ? { ...f, help: rest ?? "" } : f);
      if (kind === "TYPE" && !["counter", "gauge", "histogram", "summary", "untyped"].includes(rest ?? "")) throw new Error(`line ${line}: unknown type "${rest}"`);
      return;
    }
    if (raw.startsWith("#")) return;
    const sample = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`).exec(raw);
    if (!sample) throw new Error(`line ${line}: not a sample: ${raw}`);
    const [, name, body, value] = sample as unknown as [string, string, string | undefined, string];
    const f = familyOf(families, name);
    if (!f || f.type === "untyped") throw new Error(`line ${line}: ${name} has no # TYPE line before it`);
    f.samples.push({ name, labels: labelsOf(body ?? "", line), value: number(value, line) });
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return [...families.values()];
}
