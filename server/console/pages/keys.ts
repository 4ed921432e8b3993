import { call, type ApiError } from "../api.js";
import type { Page } from "../context.js";
import { formatTime, h, show } from "../dom.js";

interface ApiKey {
  id: string;
  tenant?: string;
  roles?: string[];
  name?: string;
  createdUnixMs?: string;
  expiresUnixMs?: string;
  revokedUnixMs?: string;
}

const ROLES = ["predict", "train", "admin"];

/** The keys (admin): list, create (the token shown once, here only), revoke. */
export const keysPage: Page = ({ root }) => {
  const message = h("p", { class: "error", role: "alert" });
  const created = h("div", { id: "created-key" });
  const table = h("div", {}, h("p", { class: "muted" }, "Loading keys…"));
  const tenant = h("input", { name: "tenant", placeholder: "tenant", required: true, autocomplete: "off" });
  const name = h("input", { name: "name", placeholder: "name (optional)", autocomplete: "off" });
  const roles = ROLES.map((r) => h("input", { type: "checkbox", name: `role-${r}`, value: r, checked: r === "predict" }));
  const expires = h("input", { name: "expires", type: "number", min: 0, placeholder: "expires in days (0: never)" });
  const form = h(
    "form",
    { class: "inline card", id: "create-key" },
    tenant,
    name,
    ...roles.map((box) => h("label", {}, box, ` ${box.value}`)),
    expires,
    h("button", { type: "submit" }, "Create key"),
  );
  show(root, h("h1", {}, "API keys"), message, form, created, table);
  const refresh = async (): Promise<void> => {
    try {
      const { keys = [] } = await call<{ keys?: ApiKey[] }>("aiaas.v1.Admin/ListKeys");
      show(
        table,
        h(
          "table",
          { id: "keys" },
          h("thead", {}, h("tr", {}, ...["Key", "Tenant", "Name", "Roles", "Created", "Expires", "State", ""].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...keys.map((k) => {
              const revoked = Number(k.revokedUnixMs ?? 0) > 0;
              return h(
                "tr",
                { "data-key": k.id },
                h("td", {}, h("code", {}, k.id)),
                h("td", {}, k.tenant || "—"),
                h("td", {}, k.name || "—"),
                h("td", {}, (k.roles ?? []).join(", ")),
                h("td", {}, formatTime(k.createdUnixMs)),
                h("td", {}, Number(k.expiresUnixMs ?? 0) ? formatTime(k.expiresUnixMs) : "never"),
                h("td", {}, h("span", { class: `state state-${revoked ? "REVOKED" : "READY"}` }, revoked ? "REVOKED" : "ACTIVE")),
                h("td", {}, revoked ? null : h("button", { class: "danger", onclick: () => void revoke(k) }, "Revoke")),
              );
            }),
          ),
        ),
      );
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
  };
  const revoke = async (k: ApiKey): Promise<void> => {
    if (!confirm(`Revoke key ${k.id} (${k.tenant ?? ""} ${k.name ?? ""})? Calls with it stop at once.`)) return;
    try {
      await call("aiaas.v1.Admin/RevokeKey", { id: k.id });
      message.textContent = "";
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
    await refresh();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const days = Number(expires.value || 0);
      const response = await call<{ key: ApiKey; token: string }>("aiaas.v1.Admin/CreateKey", {
        tenant: tenant.value,
        name: name.value,
        roles: roles.filter((r) => r.checked).map((r) => r.value),
        expiresInSeconds: String(Math.round(days * 86400)),
      });
      message.textContent = "";
      // The token exists only in this response: shown once, never stored by the page.
      show(created, h("div", { class: "card" }, `Key ${response.key.id} for ${response.key.tenant}. Copy its token now; it is not shown again:`, h("code", { class: "token", id: "new-token" }, response.token)));
      form.reset();
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
    await refresh();
  });
  void refresh();
  return () => undefined;
};
