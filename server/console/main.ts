// The console: sign in with an API key, then the pages the key's roles allow. Each page shows what the key
// sees over gRPC, because each request is that gRPC call.
import { ApiError, key, session as fetchSession, type Session } from "./api.js";
import { hasRole, type Page } from "./context.js";
import { h, show } from "./dom.js";
import { jobPage } from "./pages/job.js";
import { jobsPage } from "./pages/jobs.js";
import { keysPage } from "./pages/keys.js";
import { modelsPage } from "./pages/models.js";
import { trafficPage } from "./pages/traffic.js";

const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const who = document.getElementById("who")!;
const banner = document.getElementById("banner")!;

const PAGES: Record<string, { title: string; page: Page; role?: string }> = {
  models: { title: "Models", page: modelsPage },
  traffic: { title: "Traffic", page: trafficPage },
  jobs: { title: "Jobs", page: jobsPage, role: "train" },
  keys: { title: "Keys", page: keysPage, role: "admin" },
};

let stopPage: () => void = () => undefined;

function route(current: Session): void {
  stopPage();
  const [name = "models", ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const visible = Object.entries(PAGES).filter(([, p]) => !p.role || hasRole(current, p.role));
  show(nav, ...visible.map(([id, p]) => h("a", { href: `#/${id}`, class: id === name ? "active" : undefined }, p.title)));
  const entry = PAGES[name];
  if (!entry || (entry.role && !hasRole(current, entry.role))) {
    show(main, h("p", { class: "error" }, entry ? `This key lacks the ${entry.role} role the ${entry.title} page needs.` : `No page ${name}.`));
    stopPage = () => undefined;
    return;
  }
  const page = name === "jobs" && params.length ? jobPage : entry.page;
  stopPage = page({ root: main, session: current, params });
}

function signIn(reason?: string): void {
  stopPage();
  show(nav);
  show(who);
  const input = h("input", { type: "password", id: "api-key", placeholder: "API key", autocomplete: "off", required: true });
  const error = h("p", { class: "error", role: "alert" }, reason ?? "");
  const form = h("form", { class: "card signin", id: "sign-in" }, h("h1", {}, "Sign in"), h("p", { class: "muted" }, "This server needs an API key. It stays in this tab only."), input, " ", h("button", { type: "submit" }, "Sign in"), error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    key.set(input.value.trim());
    void start();
  });
  show(main, form);
  input.focus();
}

async function start(): Promise<void> {
  let current: Session;
  try {
    current = await fetchSession();
  } catch (error) {
    const tried = key.get() !== "";
    key.clear();
    if (error instanceof ApiError && error.status === 401) return signIn(tried ? error.message : undefined);
    show(main, h("p", { class: "error" }, `The server did not answer: ${(error as Error).message}`));
    return;
  }
  banner.hidden = current.authentication;
  banner.textContent = current.authentication ? "" : "Authentication is off: anyone who reaches this server can see and change everything. Start it with --keys FILE to require API keys.";
  show(
    who,
    current.authentication ? `${current.tenant ? `tenant ${current.tenant}` : "operator"} · ${current.roles.join(", ")} · key ${current.keyId}` : "no authentication",
    current.authentication &&
      h("button", { class: "secondary", id: "sign-out", onclick: () => { key.clear(); signIn(); } }, "Sign out"),
  );
  window.onhashchange = () => route(current);
  route(current);
}

void start();
