import { call, watch, type ApiError } from "../api.js";
import { LiveChart } from "../chart.js";
import { hasRole, type Page } from "../context.js";
import { enumName, formatNumber, formatTime, h, show } from "../dom.js";
import { TERMINAL, jobState, stateBadge, type Job } from "./jobs.js";

interface TrainEvent {
  eventId: string;
  timeUnixMs?: string;
  state?: { state?: string; message?: string };
  metrics?: { step?: string; epoch?: number; trainLoss?: number; trainAccuracy?: number; learningRate?: number; examplesPerSecond?: number; totalSteps?: string };
  validation?: { epoch?: number; step?: string; loss?: number; accuracy?: number; rows?: string };
  checkpoint?: { checkpoint?: string; step?: string; epoch?: number };
  completed?: { model?: string; version?: string; stopReason?: string };
  failed?: { code?: number; message?: string };
  data?: { trainRows?: string; validationRows?: string; bytes?: string };
  resumed?: { fromStep?: string; checkpoint?: string; reason?: string };
  prepared?: { trainedTensors?: number; trainedElements?: string; frozen?: string[]; notes?: string[] };
}

const MAX_EVENTS = 300;

/** One line for the event log. */
function describe(e: TrainEvent): string {
  if (e.state) return `state ${enumName(e.state.state, "JOB_STATE_")}${e.state.message ? `: ${e.state.message}` : ""}`;
  if (e.metrics) return `step ${e.metrics.step ?? 0} (epoch ${e.metrics.epoch ?? 0}): loss ${formatNumber(e.metrics.trainLoss, 4)}, accuracy ${formatNumber(e.metrics.trainAccuracy, 3)}, ${formatNumber(e.metrics.examplesPerSecond, 0)} ex/s`;
  if (e.validation) return `validation after epoch ${e.validation.epoch ?? 0}: loss ${formatNumber(e.validation.loss, 4)}, accuracy ${formatNumber(e.validation.accuracy, 3)} on ${e.validation.rows ?? 0} rows`;
  if (e.checkpoint) return `checkpoint ${e.checkpoint.checkpoint ?? ""} at step ${e.checkpoint.step ?? 0}`;
  if (e.completed) return `completed: published ${e.completed.model}:${e.completed.version}${e.completed.stopReason ? ` (${e.completed.stopReason})` : ""}`;
  if (e.failed) return `failed: ${e.failed.message ?? ""}`;
  if (e.data) return `data: ${e.data.trainRows ?? 0} training rows, ${e.data.validationRows ?? 0} validation rows`;
  if (e.resumed) return `resumed from step ${e.resumed.fromStep ?? 0}${e.resumed.reason ? ` (${e.resumed.reason})` : ""}`;
  if (e.prepared) return `prepared: ${e.prepared.trainedTensors ?? 0} trained tensors (${e.prepared.trainedElements ?? 0} values)${e.prepared.notes?.length ? `; ${e.prepared.notes.join("; ")}` : ""}`;
  return "event";
}

/** A job: its loss and accuracy per step and per epoch, live; its events, checkpoints and published version; cancel. */
export const jobPage: Page = ({ root, session, params }) => {
  const id = params[0] ?? "";
  const summary = h("div", { class: "card kv", id: "job-summary" });
  const message = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { class: "danger", id: "cancel-job", disabled: true }, "Cancel job");
  const log = h("ol", { class: "events card", id: "job-events" });
  const checkpoints = h("ul", { id: "job-checkpoints" });
  const boxes = ["loss", "accuracy"].map((n) => h("div", { class: "chart", id: `chart-${n}` }));
  show(root, h("h1", {}, "Job ", h("code", {}, id)), message, summary, hasRole(session, "train") ? cancel : null, h("div", { class: "charts" }, ...boxes), h("h2", {}, "Checkpoints"), checkpoints, h("h2", {}, "Events"), log);
  const loss = new LiveChart(boxes[0]!, "Loss", [{ label: "training", color: "#2457c5" }, { label: "validation", color: "#c77d00" }], { xLabel: "step" });
  const accuracy = new LiveChart(boxes[1]!, "Accuracy", [{ label: "training", color: "#2457c5" }, { label: "validation", color: "#c77d00" }], { xLabel: "step" });
  let job: Job | undefined;
  const renderSummary = (): void => {
    if (!job) return;
    const state = jobState(job);
    cancel.disabled = TERMINAL.has(state);
    show(
      summary,
      h("span", {}, "State"), h("span", {}, stateBadge(state), job.error?.message ? ` ${job.error.message}` : ""),
      h("span", {}, "Model"), h("span", {}, job.model ?? "—"),
      h("span", {}, "Tenant"), h("span", {}, job.tenant || "—"),
      h("span", {}, "Progress"), h("span", { id: "job-progress" }, `step ${job.step ?? 0}${Number(job.totalSteps ?? 0) ? ` of ${job.totalSteps}` : ""}, epoch ${job.epoch ?? 0}`),
      h("span", {}, "Created"), h("span", {}, formatTime(job.createdUnixMs)),
      h("span", {}, "Published"), h("span", { id: "job-published" }, job.publishedVersion ? h("a", { href: "#/models" }, `${job.model}:${job.publishedVersion}`) : "—"),
    );
  };
  let summaryScheduled = false;
  const scheduleSummary = (): void => {
    if (summaryScheduled) return;
    summaryScheduled = true;
    requestAnimationFrame(() => {
      summaryScheduled = false;
      renderSummary();
    });
  };
  const onEvent = (e: TrainEvent): void => {
    log.append(h("li", {}, h("span", { class: "muted" }, `${new Date(Number(e.timeUnixMs ?? 0)).toLocaleTimeString()} `), describe(e)));
    // The newest events only: a long job has tens of thousands.
    while (log.children.length > MAX_EVENTS) log.firstElementChild!.remove();
    if (!job) return;
    if (e.metrics) {
      const step = Number(e.metrics.step ?? 0);
      loss.add(step, [e.metrics.trainLoss ?? null, null]);
      accuracy.add(step, [e.metrics.trainAccuracy ?? null, null]);
      job = { ...job, step: e.metrics.step, epoch: e.metrics.epoch, totalSteps: e.metrics.totalSteps };
    }
    if (e.validation) {
      const step = Number(e.validation.step ?? 0);
      loss.add(step, [null, e.validation.loss ?? null]);
      accuracy.add(step, [null, e.validation.accuracy ?? null]);
    }
    if (e.checkpoint) {
      // Newest first; the ten newest are listed (every one is in the events below).
      checkpoints.prepend(h("li", {}, h("code", {}, e.checkpoint.checkpoint ?? ""), ` step ${e.checkpoint.step ?? 0}, epoch ${e.checkpoint.epoch ?? 0}`));
      while (checkpoints.children.length > 10) checkpoints.lastElementChild!.remove();
    }
    if (e.state?.state) job = { ...job, state: e.state.state };
    if (e.completed) job = { ...job, publishedVersion: e.completed.version };
    if (e.failed) job = { ...job, error: e.failed };
    scheduleSummary();
  };
  let stream: { close(): void } | undefined;
  cancel.addEventListener("click", async () => {
    try {
      const answered = (await call<{ job: Job }>("aiaas.v1.Training/CancelJob", { jobId: id })).job;
      // The job's own events may have said CANCELLED before this answer (taken as the cancel began) came back.
      if (!job || !TERMINAL.has(jobState(job))) job = answered;
      renderSummary();
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
  });
  void (async () => {
    try {
      job = (await call<{ job: Job }>("aiaas.v1.Training/GetJob", { jobId: id })).job;
      renderSummary();
      // From the first event: the curves are drawn from the job's whole history, then grow as it runs.
      stream = watch<TrainEvent>("aiaas.v1.Training/WatchJob", { jobId: id, afterEventId: "0" }, onEvent, (code, text) => {
        if (code !== "OK") message.textContent = `The job's event stream ended: ${text ?? code}`;
      });
    } catch (error) {
      message.textContent = (error as ApiError).message;
    }
  })();
  return () => {
    stream?.close();
    loss.destroy();
    accuracy.destroy();
  };
};
