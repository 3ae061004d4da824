/* Acting on a run: Stop (with a reason), Resume (or why not), answering the question a paused
   run asks (Command(resume=...)), and Edit and continue (a fork from the run's final
   checkpoint with edited values). */

import { api } from "./api.js";
import { $, h, json, valueView } from "./dom.js";
import { graphNodes } from "./overview.js";
import { view, scheduleRefresh, show, TERMINAL } from "./run.js";

const RESUMABLE = new Set(["cancelled", "timeout", "error"]);
const STOPPABLE = new Set(["pending", "running", "cancelling", "interrupted"]);

function fail(error) {
  $("action-error").textContent = error.message || String(error);
}

export function showActions() {
  const { run, resume, interrupts, kept } = view.detail;
  const status = run.tether_status;
  $("stop-form").hidden = !STOPPABLE.has(status);
  $("stop-button").disabled = status === "cancelling";
  $("stop-button").textContent = status === "cancelling" ? "Stopping…" : "Stop";
  $("resume-button").hidden = !RESUMABLE.has(status);
  $("resume-button").disabled = !resume.allowed;
  $("resume-why").hidden = resume.allowed || !RESUMABLE.has(status);
  $("resume-why").textContent = resume.allowed ? "" : `Resume is not offered: ${resume.why}.`;
  $("edit-button").hidden = !kept.checkpoint_id || status === "cancelling";
  $("edit-button").textContent = STOPPABLE.has(status) && status !== "interrupted" ? "Stop and edit" : "Edit and continue";
  showQuestion(status === "interrupted" ? interrupts : []);
}

function showQuestion(interrupts) {
  const form = $("answer-form");
  form.hidden = !interrupts.length;
  if (!interrupts.length) return;
  const asked = interrupts.map((i) => {
    const value = i.value;
    const words = value && typeof value === "object" ? value.question || value.message || value.prompt : value;
    return h("div.asked", {}, typeof words === "string" ? h("p.question-text", { text: words }) : valueView(value),
      typeof words === "string" && typeof value === "object" ? h("details", {}, h("summary", { text: "Everything it sent" }), h("pre.json", { text: json(value) })) : null);
  });
  $("answer-question").replaceChildren(...asked);
}

function parsed(textValue) {
  const trimmed = textValue.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    return textValue;
  }
}

async function answer(event) {
  event.preventDefault();
  const { run, interrupts } = view.detail;
  $("action-error").textContent = "";
  const value = parsed($("answer-input").value);
  const resume = interrupts.length > 1 ? Object.fromEntries(interrupts.map((i) => [i.id, value])) : value;
  try {
    const started = await api(`/threads/${encodeURIComponent(run.thread_id)}/runs`, { method: "POST",
      body: { assistant_id: run.graph_id, command: { resume } } });
    $("answer-input").value = "";
    view.go(started.run_id);
  } catch (error) {
    fail(error);
  }
}

async function stop(event) {
  event.preventDefault();
  const run = view.detail.run;
  $("stop-button").disabled = true;
  $("action-error").textContent = "";
  try {
    const reason = $("stop-reason").value.trim();
    const receipt = await api(`/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.run_id)}/cancel`,
      { method: "POST", body: reason ? { reason } : {} });
    $("stop-reason").value = "";
    // The board may have shown the run's end already: a status only moves forward.
    if (view.runId === receipt.run_id && !TERMINAL.has(view.detail.run.tether_status)) {
      view.detail.run = receipt;
      show();
    }
    scheduleRefresh(TERMINAL.has(receipt.tether_status) ? 0 : 100);
    return receipt;
  } catch (error) {
    fail(error);
    $("stop-button").disabled = false;
    return null;
  }
}

async function resume() {
  $("action-error").textContent = "";
  try {
    const started = await api(`/tether/runs/${encodeURIComponent(view.runId)}/resume`, { method: "POST", body: {} });
    view.go(started.run_id);
  } catch (error) {
    fail(error);
  }
}

/* One field per state key of the run's final state, holding its JSON; only the fields
   changed are sent. */
function fillFork(values) {
  $("fork-fields").replaceChildren(...Object.entries(values).map(([key, value]) => {
    const id = `fork-${key.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
    return h("div.fork-field", {}, h("label", { for: id }, h("code", { text: key })),
      h("textarea", { id, rows: Math.min(8, json(value).split("\n").length), spellcheck: "false", dataset: { key, original: JSON.stringify(value) } }, json(value)));
  }));
  const select = $("fork-node");
  select.replaceChildren(h("option", { value: "", text: "automatic" }), ...graphNodes().map((n) => h("option", { value: n, text: n })));
}

async function openFork() {
  $("action-error").textContent = "";
  const run = view.detail.run;
  let values = view.detail.kept.values;
  try {
    if (STOPPABLE.has(run.tether_status) && run.tether_status !== "interrupted") {
      await api(`/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.run_id)}/cancel?wait=1`,
        { method: "POST", body: { reason: "stopped to edit its state" } });
      // The state it stopped in, whatever the view has shown meanwhile.
      values = (await api(`/tether/runs/${encodeURIComponent(run.run_id)}`)).kept.values;
      scheduleRefresh(0);
    }
  } catch (error) {
    fail(error);
    return;
  }
  if (view.runId !== run.run_id) return;
  fillFork(values || {});
  $("fork-form").hidden = false;
  $("fork-form").querySelector("textarea")?.focus();
}

async function fork(event) {
  event.preventDefault();
  $("action-error").textContent = "";
  const values = {};
  try {
    for (const area of $("fork-fields").querySelectorAll("textarea")) {
      let value;
      try {
        value = JSON.parse(area.value);
      } catch {
        throw new Error(`${area.dataset.key}: not valid JSON`);
      }
      if (JSON.stringify(value) !== area.dataset.original) values[area.dataset.key] = value;
    }
    if (!Object.keys(values).length) throw new Error("change a value first: nothing was edited");
    const body = { values };
    if ($("fork-node").value) body.as_node = $("fork-node").value;
    const started = await api(`/tether/runs/${encodeURIComponent(view.runId)}/fork`, { method: "POST", body });
    $("fork-form").hidden = true;
    view.go(started.run_id);
  } catch (error) {
    fail(error);
  }
}

export function initActions() {
  $("stop-form").addEventListener("submit", stop);
  $("resume-button").addEventListener("click", resume);
  $("answer-form").addEventListener("submit", answer);
  $("edit-button").addEventListener("click", openFork);
  $("fork-form").addEventListener("submit", fork);
  $("fork-cancel").addEventListener("click", () => { $("fork-form").hidden = true; });
}
