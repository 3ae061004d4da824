/* The state at each step of a run, as what the step changed (newest first), with the whole
   state of any step a click away. */

import { api } from "./api.js";
import { clock, h, json, plural, valueView } from "./dom.js";
import { view } from "./run.js";

const OPS = { added: "added", removed: "removed", changed: "changed", appended: "appended" };

function change(c) {
  const path = h("code.path", { text: c.path.join(".") || "(state)" });
  let body;
  if (c.op === "changed") body = [valueView(c.before), h("span.arrow", { "aria-label": "became", text: "→" }), valueView(c.after)];
  else if (c.op === "removed") body = [valueView(c.before)];
  else if (c.op === "appended") body = [h("span.muted", { text: `+${plural(c.after.length, "item")}` }), h("ol.items", {}, c.after.map((item) => h("li", {}, valueView(item))))];
  else body = [valueView(c.after)];
  return h(`li.change.${c.op}`, { dataset: { op: c.op, path: c.path.join(".") } },
    h("span.op", { text: OPS[c.op] }), path, h("div.change-body", {}, body));
}

async function showFull(step, box, button) {
  button.disabled = true;
  try {
    const thread = encodeURIComponent(view.detail.run.thread_id);
    const state = await api(`/threads/${thread}/state/${encodeURIComponent(step.checkpoint_id)}`);
    box.replaceChildren(h("pre.json", { text: json(state.values) }));
    box.hidden = false;
  } catch (error) {
    box.replaceChildren(h("p.error", { text: error.message }));
    box.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function stepCard(step) {
  const names = step.tasks.map((t) => t.name).join(", ");
  const label = step.source === "input" ? "input" : step.source === "update" ? "state edited" : names || "start";
  const full = h("div.full-state", { hidden: true });
  const button = step.checkpoint_id
    ? h("button.quiet", { type: "button", onclick: (event) => showFull(step, full, event.currentTarget) }, "Whole state")
    : null;
  const changes = step.changes.length
    ? h("ul.changes", {}, step.changes.map(change))
    : h("p.muted", { text: step.completed ? "No change." : "Not completed: its writes were not applied." });
  return h("li.step-card", { dataset: { step: String(step.step) } },
    h("div.step-head", {}, h("strong", { text: `Step ${step.step}` }), h("span.muted", { text: ` · ${label} · ${clock(step.ended_at || step.started_at)}` }), button),
    changes, full);
}

export function renderState(panel, timeline) {
  const steps = [...timeline.steps].reverse();
  panel.replaceChildren(h("section.card", {}, h("h3", { text: "State, step by step" }),
    h("p.muted", { text: "What each step changed, newest first." }),
    steps.length ? h("ol.step-list", {}, steps.map(stepCard)) : h("p.muted", { text: "No step yet." })));
}
