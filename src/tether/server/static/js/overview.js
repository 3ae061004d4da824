/* The overview of a run: its graph with each node's state, what it kept (or holds now), what
   it spent against its budget, and where it came from and went. */

import { api } from "./api.js";
import { duration, h, plural, shortId, valueView } from "./dom.js";
import { render as drawGraph } from "./graph.js";
import { view, TERMINAL } from "./run.js";
import { list } from "./runs.js";

const graphs = new Map();
let drawing = null;

export async function renderOverview(panel) {
  const { run } = view.detail;
  const graphBox = h("div.graph", { id: "graph" });
  const graph = h("section.card", { "aria-labelledby": "graph-title" }, h("h3#graph-title", { text: "Graph" }), graphBox);
  // A run that stopped: what it kept comes first.
  const stopped = ["cancelled", "timeout", "error"].includes(run.tether_status);
  panel.replaceChildren(...(stopped ? [keptCard(), graph] : [graph, keptCard()]), usageCard(), lineageCard());
  drawing = null;
  if (!run.graph_id) return;
  try {
    if (!graphs.has(run.graph_id)) graphs.set(run.graph_id, await api(`/assistants/${encodeURIComponent(run.graph_id)}/graph`));
    if (view.detail.run.run_id !== run.run_id) return;
    drawing = drawGraph(graphBox, graphs.get(run.graph_id));
    markGraph();
  } catch {
    graphBox.replaceChildren(h("p.muted", { text: "This server does not serve the graph any more." }));
  }
}

export function graphNodes() {
  const run = view.detail && view.detail.run;
  const graph = run && graphs.get(run.graph_id);
  return graph ? graph.nodes.map((n) => n.id).filter((id) => !id.startsWith("__")) : [];
}

/* Each node's state: running (live), failed, cancelled, waiting for input, kept, done. */
export function markGraph() {
  if (!drawing || !view.detail) return;
  const { run, kept, error } = view.detail;
  const marks = new Map();
  // Without task events (a run a worker drives streams none), its last checkpoint's next
  // tasks are the ones running.
  if (["running", "cancelling"].includes(run.tether_status) && !view.spans.size) {
    for (const name of kept.next) marks.set(name, "running");
  }
  for (const span of view.spans.values()) marks.set(span.name, span.end === null ? "running" : span.failed ? "failed" : "done");
  for (const write of kept.pending_writes) marks.set(write.node, "done");
  if (run.tether_status === "interrupted") for (const name of kept.next) marks.set(name, "waiting");
  for (const name of kept.cancelled_tasks) marks.set(name, "cancelled");
  if (error && error.node) marks.set(error.node, "failed");
  if (TERMINAL.has(run.tether_status)) for (const [name, mark] of marks) if (mark === "running") marks.set(name, "cancelled");
  drawing.mark(marks);
}

function keptTitle(status) {
  if (["cancelled", "timeout", "error"].includes(status)) return "What was kept";
  if (status === "success") return "Final state";
  if (status === "interrupted") return "State while waiting";
  return "Latest state";
}

function valuesTable(values) {
  const keys = Object.keys(values || {});
  if (!keys.length) return h("p.muted", { text: "No state yet." });
  return h("table.kv", {}, h("tbody", {}, keys.map((key) =>
    h("tr", {}, h("th", { scope: "row" }, h("code", { text: key })), h("td", {}, valueView(values[key]))))));
}

function keptCard() {
  const { run, kept } = view.detail;
  const stopped = ["cancelled", "timeout", "error"].includes(run.tether_status);
  const facts = [];
  if (kept.checkpoint_id) {
    facts.push(h("li", {}, stopped ? "The state of step " : "State at step ", h("strong", { text: String(kept.step) }),
      stopped ? ", the last superstep that completed." : "."));
    facts.push(h("li", {}, "Final checkpoint ", h("code", { title: kept.checkpoint_id, text: shortId(kept.checkpoint_id) })));
  } else {
    facts.push(h("li.muted", { text: "No checkpoint was written." }));
  }
  if (stopped && kept.cancelled_tasks.length) {
    facts.push(h("li", {}, "Cancelled tasks: ", kept.cancelled_tasks.map((n) => h("span.chip.cancelled", { text: n }))));
  }
  for (const partial of (stopped && kept.partial_answers) || []) {
    facts.push(h("li.partial-answer", {}, "Answer cut short (kept): ", h("q", { text: partial.text })));
  }
  if (stopped && kept.next.length) {
    facts.push(h("li", {}, run.tether_status === "error" ? "Unfinished: " : "A resume runs: ", kept.next.map((n) => h("span.chip", { text: n }))));
  }
  const writes = kept.pending_writes.length
    ? h("div", {}, h("h4", { text: `Writes of finished tasks (${plural(kept.pending_writes.length, "write")}, kept for a resume)` }),
      h("table.kv.writes", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "node" }), h("th", { scope: "col", text: "key" }), h("th", { scope: "col", text: "value" }))),
        h("tbody", {}, kept.pending_writes.map((w) => h("tr", {}, h("td", {}, h("code", { text: w.node })), h("td", {}, h("code", { text: w.key })), h("td", {}, valueView(w.value)))))))
    : (stopped ? h("p.muted", { text: "No task of the unfinished step had finished: nothing pending." }) : null);
  const values = run.tether_status === "running" && view.values ? view.values : kept.values;
  return h("section.card#kept", { "aria-labelledby": "kept-title" },
    h("h3#kept-title", { text: keptTitle(run.tether_status) }), h("ul.facts", {}, facts), valuesTable(values), writes);
}

function meter(label, used, limit, format = (v) => String(v)) {
  const over = limit !== undefined && limit !== null && used > limit;
  const share = limit ? Math.min(100, (100 * used) / limit) : null;
  return h("div.meter", { dataset: { name: label } },
    h("span.meter-label", { text: label }),
    h("span.meter-value", { text: limit !== undefined && limit !== null ? `${format(used)} of ${format(limit)}` : format(used) }),
    share !== null ? h("span.meter-bar", { role: "img", "aria-label": `${Math.round(share)} percent of the ${label} budget` },
      h(`span.fill${over ? ".over" : ""}`, { style: { width: `${share}%` } })) : null);
}

function usageCard() {
  const { usage } = view.detail;
  const title = h("h3#usage-title", { text: "Usage" });
  if (!usage) {
    const steps = view.timeline ? view.timeline.steps.filter((s) => s.completed && s.tasks.length).length : null;
    return h("section.card#usage", { "aria-labelledby": "usage-title" }, title,
      h("p.muted", { text: "What the run spent is recorded when it ends." }), steps !== null ? meter("steps", steps) : null);
  }
  const spent = usage.usage;
  const budget = usage.budget || {};
  const calls = Object.entries(spent.node_calls || {});
  const shown = (key) => spent[key] || (budget[key] !== undefined && budget[key] !== null);
  const reported = ["tokens", "cost", "tool_calls"].filter(shown);
  return h("section.card#usage", { "aria-labelledby": "usage-title" }, title,
    h("div.meters", {},
      meter("steps", spent.steps, budget.steps),
      meter("node calls", calls.reduce((sum, [, n]) => sum + n, 0), typeof budget.node_calls === "number" ? budget.node_calls : undefined),
      shown("tokens") ? meter("tokens", spent.tokens, budget.tokens) : null,
      shown("cost") ? meter("cost", spent.cost, budget.cost, (v) => `$${Number(v).toFixed(4)}`) : null,
      shown("tool_calls") ? meter("tool calls", spent.tool_calls, budget.tool_calls) : null,
      meter("wall time", spent.wall_time * 1000, budget.wall_time !== undefined ? budget.wall_time * 1000 : undefined, duration)),
    calls.length ? h("p.muted", { text: `Calls by node: ${calls.map(([n, c]) => `${n} ×${c}`).join(", ")}` }) : null,
    reported.length ? null : h("p.muted", { text: "No tokens, cost or tool calls were reported (nodes report them with tether.charge)." }));
}

function runLink(runId) {
  return h("a", { href: list.href(runId), title: runId }, h("code", { text: shortId(runId) }));
}

function lineageCard() {
  const l = view.detail.lineage;
  const rows = [
    ["Resumed from", l.resumed_from ? [runLink(l.resumed_from)] : []],
    ["Forked from", l.forked_from ? [runLink(l.forked_from)] : []],
    ["Superseded by", l.superseded_by ? [runLink(l.superseded_by)] : []],
    ["Resumed by", l.resumed_by.map(runLink)],
    ["Forks", l.forks.map(runLink)],
    ["Supersedes", l.supersedes.map(runLink)],
  ].filter(([, links]) => links.length);
  const body = rows.length
    ? h("dl.lineage", {}, rows.map(([label, links]) => [h("dt", { text: label }), h("dd", {}, links.flatMap((a, i) => (i ? [", ", a] : [a])))]))
    : h("p.muted", { text: "A run of its own: not resumed, forked or superseded." });
  return h("section.card#lineage", { "aria-labelledby": "lineage-title" }, h("h3#lineage-title", { text: "Lineage" }), body);
}

