/* A run's timeline as a Gantt-like strip: one lane per node, one bar per task, placed in time
   and coloured by how it ended; then the steps as a table (what the strip shows, in words). */

import { clock, duration, h, plural } from "./dom.js";
import { list } from "./runs.js";

const NS = "http://www.w3.org/2000/svg";
const LABEL = 120, LANE = 26, AXIS = 26, PAD = 8, RIGHT = 24;
const STATES = ["done", "running", "kept", "cancelled", "failed", "abandoned", "interrupted"];
const WORDS = { done: "done", running: "running", kept: "finished, kept", cancelled: "cancelled",
  failed: "failed", abandoned: "abandoned", interrupted: "waiting for input" };

function svg(name, attrs, parent, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

/* Every task of the timeline, plus those the live stream showed since it was fetched. */
function tasksOf(timeline, spans) {
  const tasks = [];
  for (const step of timeline.steps) {
    for (const task of step.tasks) {
      tasks.push({ ...task, step: step.step, start: Date.parse(task.started_at),
        end: task.ended_at ? Date.parse(task.ended_at) : null });
    }
  }
  const fetched = Date.parse(timeline.now);
  const last = tasks.length ? tasks[tasks.length - 1].step : -1;
  for (const span of spans.values()) {
    if (span.start <= fetched) continue;
    tasks.push({ name: span.name, step: last + 1, start: span.start, end: span.end,
      status: span.end === null ? "running" : span.failed ? "failed" : "done" });
  }
  return tasks;
}

export function renderTimeline(panel, timeline, spans) {
  const tasks = tasksOf(timeline, spans);
  const title = h("h3", { text: "Timeline" });
  if (!tasks.length) {
    panel.replaceChildren(h("section.card", {}, title, h("p.muted", { text: "No task has run yet." })));
    return;
  }
  const card = h("section.card", {}, title);
  const wrap = h("div.gantt-wrap");
  card.append(wrap);
  panel.replaceChildren(card);
  const now = Date.now() + list.clockSkew;
  const t0 = Math.min(...tasks.map((t) => t.start));
  const t1 = Math.max(t0 + 1, ...tasks.map((t) => t.end ?? now));
  const lanes = [...new Set(tasks.map((t) => t.name))];
  const width = Math.max(480, Math.min(1400, wrap.clientWidth || 800));
  const plot = width - LABEL - RIGHT;
  const x = (t) => LABEL + ((t - t0) / (t1 - t0)) * plot;
  const height = AXIS + lanes.length * LANE + PAD;
  const steps = timeline.steps.filter((s) => s.tasks.length);
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "gantt", role: "img",
    "aria-label": `Timeline: ${plural(steps.length, "step")}, ${plural(tasks.length, "task")} over ${duration(t1 - t0)}` });
  for (let i = 0; i <= 4; i++) {
    const at = x(t0 + ((t1 - t0) * i) / 4);
    svg("line", { x1: at, x2: at, y1: AXIS - 6, y2: height - PAD, class: "tick" }, chart);
    svg("text", { x: at, y: AXIS - 10, class: "tick-label", "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, chart, i ? duration(((t1 - t0) * i) / 4) : "0");
  }
  lanes.forEach((name, i) => {
    svg("text", { x: LABEL - 8, y: AXIS + i * LANE + LANE / 2, class: "lane-label", "text-anchor": "end" }, chart, name.length > 16 ? `${name.slice(0, 15)}…` : name);
  });
  for (const task of tasks) {
    const lane = lanes.indexOf(task.name);
    const left = x(task.start);
    const right = Math.max(left + 2, x(task.end ?? now));
    const bar = svg("rect", { x: left, y: AXIS + lane * LANE + 4, width: right - left, height: LANE - 8, rx: 2,
      class: `bar ${task.status}`, "data-node": task.name, "data-status": task.status, "data-step": task.step }, chart);
    svg("title", {}, bar, `${task.name} · step ${task.step} · ${WORDS[task.status] || task.status} · ${duration((task.end ?? now) - task.start)}`);
  }
  const present = STATES.filter((s) => tasks.some((t) => t.status === s));
  const legend = h("ul.legend", { "aria-label": "Legend" }, present.map((s) => h("li", {}, h(`span.swatch.${s}`), WORDS[s])));
  const note = [
    timeline.truncated ? h("p.muted", { text: `Showing the last ${plural(timeline.steps.length, "step")}.` }) : null,
    timeline.live ? null : h("p.muted", { text: "Tasks are drawn across their whole step (their own times are known only while the server holds the run's stream)." }),
  ];
  wrap.append(chart);
  card.append(legend, ...note.filter(Boolean));
  panel.append(stepsTable(timeline));
}

function stepsTable(timeline) {
  const rows = timeline.steps.map((step) => {
    const took = step.ended_at ? Date.parse(step.ended_at) - Date.parse(step.started_at) : null;
    const tasks = step.tasks.length
      ? step.tasks.map((t) => h(`span.chip.${t.status}`, { title: WORDS[t.status] || t.status, text: `${t.name} · ${WORDS[t.status] || t.status}` }))
      : h("span.muted", { text: step.source === "input" ? "input" : "—" });
    return h("tr", { dataset: { step: String(step.step) } },
      h("td", { text: step.completed ? String(step.step) : `${step.step} (unfinished)` }),
      h("td", {}, tasks),
      h("td", { text: clock(step.started_at) }),
      h("td", { text: took === null ? "…" : duration(took) }),
      h("td", { text: step.changes.length ? plural(step.changes.length, "change") : "" }));
  });
  return h("section.card", {}, h("details", { open: timeline.steps.length <= 40 },
    h("summary", {}, h("h3.inline", { text: `Steps (${timeline.steps.length})` })),
    h("div.table-wrap", {}, h("table.steps", {},
      h("thead", {}, h("tr", {}, ["Step", "Tasks", "Started", "Took", "Changes"].map((c) => h("th", { scope: "col", text: c })))),
      h("tbody", {}, rows)))));
}
