// deploy/grafana/aiaas-dashboard.json against a real server's /metrics: every query parses as PromQL
// (Prometheus's own grammar, @prometheus-io/lezer-promql), and every metric and label it names is one the
// server exports after serving traffic (good and failed requests) and finishing a training job.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { parser } from "@prometheus-io/lezer-promql";
import { Tensor } from "@aiaas/sdk";
import { parseExposition, type Family } from "./support/prometheus.js";
import { startConsoleFixture, trainingChunks, trainingSpec, type ConsoleFixture } from "./support/console-fixture.js";

interface Target {
  readonly expr: string;
}
interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: Target[];
  readonly panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(new URL("../deploy/grafana/aiaas-dashboard.json", import.meta.url), "utf8")) as {
  panels: Panel[];
  templating: { list: { name: string; definition: string }[] };
};
const queries = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
/** Grafana's variables become what Prometheus would receive. */
const promql = (expr: string): string => expr.replaceAll("$__rate_interval", "5m").replaceAll("$model", ".*");

/** The metrics a query reads and the labels it matches or groups by on each. */
function references(expr: string): { metrics: string[]; labels: string[] } {
  const tree = parser.parse(expr);
  const metrics: string[] = [];
  const labels: string[] = [];
  const errors: number[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") metrics.push(expr.slice(node.from, node.to));
      if (node.name === "LabelName") labels.push(expr.slice(node.from, node.to));
    },
  });
  assert.deepEqual(errors, [], `${expr}: not PromQL (errors at ${errors.join(", ")})`);
  return { metrics, labels };
}

describe("the Grafana dashboard", () => {
  let f: ConsoleFixture;
  let families: Family[];
  before(async () => {
    f = await startConsoleFixture();
    const alpha = f.client("alpha");
    for (let i = 0; i < 20; i++) await alpha.predict("alpha-model", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
    await assert.rejects(alpha.predict("alpha-model", { x: Tensor.float32([1, 3], [1, 2, 3]) }));
    for await (const _ of alpha.train(trainingSpec("dashboard-job", 1), trainingChunks(2)));
    families = parseExposition(await (await fetch(`${f.url}/metrics`, { headers: { authorization: `Bearer ${f.tokens.admin}` } })).text());
  });
  after(() => f.close());

  /** The family a metric name reads (a histogram's _bucket, _sum and _count read the histogram). */
  const familyOf = (metric: string): Family | undefined =>
    families.find((fam) => fam.name === metric || (fam.type === "histogram" && [`${fam.name}_bucket`, `${fam.name}_sum`, `${fam.name}_count`].includes(metric)));

  it("has queries for traffic, latency quantiles, queue and batches, errors by code and jobs", () => {
    const all = queries.map((q) => q.expr).join("\n");
    for (const needed of ["aiaas_request_count_total", "aiaas_request_latency_bucket", "aiaas_batch_queue_wait", "aiaas_batch_size", 'code!="OK"', "aiaas_jobs", "histogram_quantile(0.99"]) {
      assert.ok(all.includes(needed), `a query uses ${needed}`);
    }
    assert.ok(queries.length >= 12, `${queries.length} queries`);
  });

  it("every query parses as PromQL and names only metrics and labels the server exports", () => {
    for (const { panel, expr } of queries) {
      const { metrics, labels } = references(promql(expr));
      assert.ok(metrics.length > 0, `${panel}: reads a metric`);
      for (const metric of metrics) {
        const family = familyOf(metric);
        assert.ok(family, `${panel}: ${metric} is not exported (exported: ${families.map((x) => x.name).join(", ")})`);
        const exported = new Set(family.samples.flatMap((s) => Object.keys(s.labels)));
        for (const label of labels) assert.ok(exported.has(label), `${panel}: ${metric} has no label ${label} (it has ${[...exported].join(", ")})`);
      }
    }
  });

  it("its model variable lists the label of an exported metric", () => {
    for (const variable of dashboard.templating.list) {
      const [, metric, label] = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.definition) ?? [];
      const family = familyOf(metric ?? "");
      assert.ok(family?.samples.some((s) => s.labels[label!] === "alpha-model"), `${variable.name}: ${variable.definition} lists the served models`);
    }
  });
});
