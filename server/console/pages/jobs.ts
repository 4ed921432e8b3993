import { call, watch, type ApiError, type Watch } from "../api.js";
import type { Page } from "../context.js";
import { enumName, formatNumber, formatTime, h, show } from "../dom.js";

export interface Job {
  id: string;
  model?: string;
  tenant?: string;
  state?: string;
  createdUnixMs?: string;
  updatedUnixMs?: string;
  step?: string;
  epoch?: number;
  totalSteps?: string;
  publishedVersion?: string;
  lastEventId?: string;
  error?: { code?: number; message?: string };
  metrics?: { trainLoss?: number; validationLoss?: number; validationAccuracy?: number };
}

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);
export const jobState = (job: Job): string => enumName(job.state, "JOB_STATE_");
export const stateBadge = (state: string): HTMLElement => h("span", { class: `state state-${state}` }, state);

const progress = (job: Job): string => {
  const total = Number(job.totalSteps ?? 0);
  const step = Number(job.step ?? 0);
  return total > 0 ? `${step}/${total} (${Math.floor((100 * step) / total)}%)` : String(step);
};

/** The key's jobs (an admin's: every tenant's), newest first; a running job's row follows its events live. */
export const jobsPage: Page = ({ root }) => {
  const message = h("p", { class: "error", role: "alert" });
  const table = h("div", {}, h("p", { class: "muted" }, "Loading jobs…"));
  show(root, h("h1", {}, "Training jobs"), message, table);
  const watches = new Map<string, Watch>();
  let jobs: Job[] = [];
  const render = (): void => {
    show(
      table,
      jobs.length === 0
        ? h("p", { class: "muted" }, "No jobs yet. Start one with the SDK or `aiaas train`.")
        : h(
            "table",
            { id: "jobs" },
            h("thead", {}, h("tr", {}, ...["Job", "Tenant", "Model", "State", "Progress", "Loss", "Created", "Published"].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              ...jobs.map((j) =>
                h(
                  "tr",
                  { "data-job": j.id },
                  h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, h("code", {}, j.id))),
                  h("td", {}, j.tenant || "—"),
                  h("td", {}, j.model ?? "—"),
                  h("td", {}, stateBadge(jobState(j)), j.error?.message ? h("div", { class: "muted" }, j.error.message) : null),
                  h("td", {}, progress(j)),
                  h("td", {}, formatNumber(j.metrics?.trainLoss, 4)),
                  h("td", {}, formatTime(j.createdUnixMs)),
                  h("td", {}, j.publishedVersion ? `${j.model}:${j.publishedVersion}` : "—"),
                ),
              ),
            ),
          ),
    );
  };
  // A running job's row moves with its own events (its steps and state), not with a poll.
  const follow = (job: Job): void => {
    if (watches.has(job.id) || TERMINAL.has(jobState(job))) return;
    const update = (changes: Partial<Job>): void => {
      jobs = jobs.map((j) => (j.id === job.id ? { ...j, ...changes } : j));
      render();
    };
    watches.set(
      job.id,
      watch<{ eventId: string; metrics?: { step?: string; epoch?: number; totalSteps?: string; trainLoss?: number }; state?: { state?: string } }>(
        "aiaas.v1.Training/WatchJob",
        { jobId: job.id, afterEventId: job.lastEventId ?? "0" },
        (event) => {
          if (event.metrics) update({ step: event.metrics.step, epoch: event.metrics.epoch, totalSteps: event.metrics.totalSteps, metrics: { trainLoss: event.metrics.trainLoss } });
          if (event.state?.state) update({ state: event.state.state });
        },
        (code) => {
          watches.delete(job.id);
          // Ended with its job: the row gets the final state and the published version.
          if (code === "OK") void refresh();
        },
      ),
    );
  };
  const refresh = async (): Promise<void> => {
    try {
      const listed = (await call<{ jobs?: Job[] }>("aiaas.v1.Training/ListJobs")).jobs ?? [];
      jobs = listed.sort((a, b) => Number(b.createdUnixMs ?? 0) - Number(a.createdUnixMs ?? 0));
      message.textContent = "";
      render();
      for (const j of jobs.slice(0, 20)) follow(j);
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
  };
  void refresh();
  // New jobs appear within a few seconds; the running ones stream.
  const timer = setInterval(() => void refresh(), 5000);
  return () => {
    clearInterval(timer);
    for (const w of watches.values()) w.close();
  };
};
