import { watch } from "../api.js";
import { LiveChart } from "../chart.js";
import type { Page } from "../context.js";
import { formatNumber, h, show } from "../dom.js";

interface VersionTraffic {
  model: string;
  version: string;
  requestsPerSecond?: number;
  errorsPerSecond?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  queueWaitMeanMs?: number;
  queueWaitP99Ms?: number;
  meanBatchSize?: number;
  batchesPerSecond?: number;
  errorsByCode?: Record<string, string>;
}
interface TrafficSample {
  timeUnixMs: string;
  intervalSeconds: number;
  versions?: VersionTraffic[];
}

const labelOf = (v: VersionTraffic): string => `${v.model}:${v.version}`;

/** Requests, errors, latency, queue time and batch size per model version, live from WatchTraffic. */
export const trafficPage: Page = ({ root }) => {
  const picker = h("select", { id: "traffic-model" }, h("option", { value: "" }, "all models"));
  const status = h("p", { class: "muted", id: "traffic-status" }, "Waiting for the first sample…");
  const table = h("div");
  const grid = h("div", { class: "charts" });
  show(root, h("h1", {}, "Traffic"), h("form", { class: "inline" }, h("label", {}, "Model ", picker), status), table, grid);
  const boxes = ["requests", "latency", "queue", "batch"].map((id) => h("div", { class: "chart", id: `chart-${id}` }));
  grid.append(...boxes);
  const charts = [
    new LiveChart(boxes[0]!, "Requests per second", [{ label: "requests/s", color: "#2457c5" }, { label: "errors/s", color: "#b3261e" }], { time: true }),
    new LiveChart(boxes[1]!, "Latency (ms)", [{ label: "p50", color: "#2457c5" }, { label: "p99", color: "#c77d00" }], { time: true }),
    new LiveChart(boxes[2]!, "Queue wait (ms)", [{ label: "mean", color: "#2457c5" }, { label: "p99", color: "#c77d00" }], { time: true }),
    new LiveChart(boxes[3]!, "Batch size (rows)", [{ label: "mean batch", color: "#13622b" }], { time: true }),
  ];
  const samples: TrafficSample[] = [];
  const known = new Set<string>();

  /** One chart point per sample: the selected version's numbers, or every version's summed (rates) or worst (latency). */
  const plot = (sample: TrafficSample): void => {
    const selected = picker.value;
    const vs = (sample.versions ?? []).filter((v) => !selected || labelOf(v) === selected);
    const sum = (f: (v: VersionTraffic) => number | undefined): number => vs.reduce((a, v) => a + (f(v) ?? 0), 0);
    const worst = (f: (v: VersionTraffic) => number | undefined): number | null => (vs.length ? Math.max(...vs.map((v) => f(v) ?? 0)) : null);
    const batches = sum((v) => v.batchesPerSecond);
    const x = Number(sample.timeUnixMs) / 1000;
    charts[0]!.add(x, [sum((v) => v.requestsPerSecond), sum((v) => v.errorsPerSecond)]);
    charts[1]!.add(x, [worst((v) => v.latencyP50Ms), worst((v) => v.latencyP99Ms)]);
    charts[2]!.add(x, [worst((v) => v.queueWaitMeanMs), worst((v) => v.queueWaitP99Ms)]);
    charts[3]!.add(x, [batches > 0 ? sum((v) => (v.meanBatchSize ?? 0) * (v.batchesPerSecond ?? 0)) / batches : null]);
  };
  const latest = (sample: TrafficSample): void => {
    const rows = (sample.versions ?? []).map((v) =>
      h(
        "tr",
        { "data-model": v.model },
        h("td", {}, labelOf(v)),
        h("td", {}, formatNumber(v.requestsPerSecond)),
        h("td", {}, formatNumber(v.errorsPerSecond), v.errorsByCode && Object.keys(v.errorsByCode).length ? h("div", { class: "muted" }, Object.entries(v.errorsByCode).map(([c, n]) => `${c} ${n}`).join(", ")) : null),
        h("td", {}, formatNumber(v.latencyP50Ms)),
        h("td", {}, formatNumber(v.latencyP99Ms)),
        h("td", {}, formatNumber(v.queueWaitMeanMs)),
        h("td", {}, formatNumber(v.meanBatchSize)),
      ),
    );
    show(
      table,
      rows.length === 0
        ? h("p", { class: "muted" }, "No requests in the last interval.")
        : h(
            "table",
            { id: "traffic-now" },
            h("thead", {}, h("tr", {}, ...["Version", "req/s", "errors/s", "p50 ms", "p99 ms", "queue ms", "batch"].map((t) => h("th", {}, t)))),
            h("tbody", {}, ...rows),
          ),
    );
  };
  const stream = watch<TrafficSample>(
    "aiaas.v1.Models/WatchTraffic",
    {},
    (sample) => {
      samples.push(sample);
      if (samples.length > 600) samples.shift();
      for (const v of sample.versions ?? []) {
        if (known.has(labelOf(v))) continue;
        known.add(labelOf(v));
        picker.append(h("option", { value: labelOf(v) }, labelOf(v)));
      }
      plot(sample);
      latest(sample);
      status.textContent = `every ${formatNumber(sample.intervalSeconds, 1)} s · last ${new Date(Number(sample.timeUnixMs)).toLocaleTimeString()}`;
    },
    (code, message) => {
      status.textContent = code === "OK" ? "The stream ended." : `The stream ended: ${message ?? code}`;
      status.className = code === "OK" ? "muted" : "error";
    },
  );
  // Another model chosen: its history is drawn again from the samples kept here.
  picker.addEventListener("change", () => {
    for (const chart of charts) chart.clear();
    for (const sample of samples) plot(sample);
  });
  return () => {
    stream.close();
    for (const chart of charts) chart.destroy();
  };
};
