import { ApiError, call } from "../api.js";
import { hasRole, type Page } from "../context.js";
import { enumName, h, show } from "../dom.js";

interface TensorSpec {
  name: string;
  datatype?: string;
  shape?: string[];
}
interface Version {
  version: string;
  state?: string;
  reason?: string;
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
}
interface Model {
  name: string;
  state?: string;
  reason?: string;
  versions?: Version[];
  providers?: string[];
  instanceCount?: number;
  batching?: { maxBatchSize?: number; maxQueueDelayUs?: string; preferredBatchSizes?: number[]; maxQueueSize?: number; defaultTimeoutMs?: string };
}

const tensors = (specs: TensorSpec[] | undefined): string =>
  (specs ?? []).map((t) => `${t.name}: ${enumName(t.datatype, "DATA_TYPE_").toLowerCase()}[${(t.shape ?? []).map((d) => (d === "-1" ? "?" : d)).join(", ")}]`).join("; ") || "—";

const batching = (b: Model["batching"]): string =>
  b ? `max batch ${b.maxBatchSize ?? 0}, queue delay ${Number(b.maxQueueDelayUs ?? 0)} µs, queue ${b.maxQueueSize ?? 0}${b.preferredBatchSizes?.length ? `, preferred ${b.preferredBatchSizes.join("/")}` : ""}${Number(b.defaultTimeoutMs ?? 0) ? `, timeout ${b.defaultTimeoutMs} ms` : ""}` : "—";

const state = (value: string | undefined): HTMLElement => {
  const name = enumName(value, "MODEL_STATE_");
  return h("span", { class: `state state-${name}` }, name);
};

/** Every model and version the key sees, with state, provider, signature and batching; load/unload with the train role. */
export const modelsPage: Page = ({ root, session }) => {
  const table = h("div", {}, h("p", { class: "muted" }, "Loading models…"));
  const message = h("p", { class: "error", role: "alert" });
  show(root, h("h1", {}, "Models"), message, table);
  const control = (action: "LoadModel" | "UnloadModel", name: string) => async () => {
    message.textContent = "";
    try {
      await call(`aiaas.v1.Models/${action}`, { name });
    } catch (error) {
      message.textContent = `${action === "LoadModel" ? "Load" : "Unload"} ${name}: ${(error as ApiError).message}`;
    }
    await refresh();
  };
  const canControl = hasRole(session, "train");
  const row = (m: Model, v: Version | undefined, first: boolean, span: number): HTMLTableRowElement =>
    h(
      "tr",
      { "data-model": m.name, "data-version": v?.version ?? "" },
      first && h("td", { rowspan: span }, h("strong", {}, m.name), h("br"), state(m.state), m.reason ? h("div", { class: "muted" }, m.reason) : null),
      h("td", {}, v?.version ?? "—"),
      h("td", {}, v ? state(v.state) : "—", v?.reason ? h("div", { class: "muted reason" }, v.reason) : null),
      first && h("td", { rowspan: span }, (m.providers ?? []).map((p) => p.toUpperCase()).join(", ") || "—", h("div", { class: "muted" }, `${m.instanceCount ?? 0} instance(s)`)),
      h("td", {}, h("div", {}, "in ", h("code", {}, tensors(v?.inputs))), h("div", {}, "out ", h("code", {}, tensors(v?.outputs)))),
      first && h("td", { rowspan: span }, batching(m.batching)),
      first &&
        canControl &&
        h("td", { rowspan: span }, h("button", { class: "secondary", onclick: control("LoadModel", m.name) }, "Load"), " ", h("button", { class: "secondary", onclick: control("UnloadModel", m.name) }, "Unload")),
    );
  const refresh = async (): Promise<void> => {
    try {
      const { models = [] } = await call<{ models?: Model[] }>("aiaas.v1.Models/ListModels");
      const rows = models.flatMap((m) => {
        const versions = m.versions?.length ? m.versions : [undefined];
        return versions.map((v, i) => row(m, v, i === 0, versions.length));
      });
      show(
        table,
        models.length === 0
          ? h("p", { class: "muted" }, "No models.")
          : h(
              "table",
              { id: "models" },
              h("thead", {}, h("tr", {}, ...["Model", "Version", "State", "Provider", "Signature", "Batching", canControl ? "Control" : ""].filter(Boolean).map((t) => h("th", {}, t)))),
              h("tbody", {}, ...rows),
            ),
      );
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
  };
  void refresh();
  // A model's state changes by itself (loading, healing): the page follows it.
  const timer = setInterval(() => void refresh(), 5000);
  return () => clearInterval(timer);
};
