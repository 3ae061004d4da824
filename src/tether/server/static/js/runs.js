/* The runs list: filters, search, pages, grouping by thread, kept up to date by the server's
   live board (SSE), never by polling. */

import { api, follow } from "./api.js";
import { $, ago, badge, duration, h, plural, shortId } from "./dom.js";

const TERMINAL = new Set(["success", "error", "cancelled", "timeout"]);

export const list = {
  filter: { q: "", status: "", graph: "", kind: "", time: "", thread: "", group: false },
  offset: 0,
  limit: 50,
  total: 0,
  runs: new Map(),
  selected: null,
  clockSkew: 0,
  onRun: () => {},          // a run's record changed (the board said so)
  onNavigate: () => {},     // the filter changed: the address should say so
  href: (runId) => `#/run/${encodeURIComponent(runId)}`,
  board: null,
  refetch: null,
};

function query() {
  const f = list.filter;
  const params = new URLSearchParams({ limit: String(list.limit), offset: String(list.offset) });
  for (const key of ["q", "status", "graph", "kind", "thread"]) if (f[key]) params.set(key, f[key]);
  if (f.time) params.set("since", new Date(Date.now() + list.clockSkew - Number(f.time) * 1000).toISOString());
  return params;
}

export function elapsed(run, now = Date.now() + list.clockSkew) {
  if (run.tether_status === "interrupted") return "waiting";
  if (run.tether_status === "pending") return "queued";
  const start = Date.parse(run.started_at || run.created_at);
  const end = run.ended_at ? Date.parse(run.ended_at) : now;
  return duration(end - start);
}

function reasonText(run) {
  const reason = run.tether_reason;
  if (reason) return `${reason.kind}: ${reason.message}`;
  return run.error || "";
}

function row(run) {
  const now = Date.now() + list.clockSkew;
  const cells = [
    h("td", {}, badge(run.tether_status)),
    h("td.run", {}, h("span.graph-name", { text: run.graph_id || "?" }),
      h("a.run-link", { href: list.href(run.run_id), title: run.run_id }, h("code", { text: shortId(run.run_id) }))),
    h("td.reason", { title: reasonText(run) }, h("span", { text: reasonText(run) })),
    h("td.when", {}, h("span", { title: run.created_at, text: ago(run.created_at, now) }), h("span.took", { text: elapsed(run) })),
  ];
  const tr = h("tr", { dataset: { runId: run.run_id, status: run.tether_status } }, cells);
  tr.classList.toggle("selected", run.run_id === list.selected);
  tr.addEventListener("click", (event) => {
    if (!event.target.closest("a, button")) location.hash = list.href(run.run_id);
  });
  return tr;
}

function groupHead(threadId, runs) {
  const filter = h("button.link", { type: "button", onclick: () => setThread(threadId) }, "only this thread");
  return h("tr.group", {}, h("th", { colspan: 4, scope: "rowgroup" },
    h("span", { text: "Thread " }), h("code", { text: threadId, title: threadId }),
    h("span.muted", { text: ` · ${plural(runs.length, "run")} · ` }), filter));
}

function render() {
  const table = $("runs");
  for (const body of [...table.tBodies]) body.remove();
  const runs = [...list.runs.values()];
  if (list.filter.group) {
    const threads = new Map();
    for (const run of runs) (threads.get(run.thread_id) || threads.set(run.thread_id, []).get(run.thread_id)).push(run);
    for (const [threadId, members] of threads) table.append(h("tbody.thread", {}, groupHead(threadId, members), members.map(row)));
  } else {
    table.append(h("tbody", {}, runs.map(row)));
  }
  const filtered = ["q", "status", "graph", "kind", "time", "thread"].some((k) => list.filter[k]);
  $("runs-count").textContent = plural(list.total, "run");
  $("no-runs").hidden = runs.length > 0;
  $("no-runs").textContent = filtered ? "No runs match these filters." : "No runs yet. Start one with New run, or through the API.";
  $("page-range").textContent = list.total ? `${list.offset + 1}–${list.offset + runs.length} of ${list.total.toLocaleString("en")}` : "";
  $("page-newer").disabled = list.offset === 0;
  $("page-older").disabled = list.offset + runs.length >= list.total;
  const chip = $("filter-thread");
  chip.hidden = !list.filter.thread;
  chip.replaceChildren(h("span", { text: "Thread " }), h("code", { text: shortId(list.filter.thread) }),
    h("button.chip-x", { type: "button", "aria-label": "Show every thread", onclick: () => setThread("") }, "×"));
}

let loading = 0;

export async function loadRuns() {
  const mine = ++loading;
  const answer = await api(`/tether/runs?${query()}`);
  if (mine !== loading) return answer; // a newer query's answer is (or will be) shown
  list.clockSkew = Date.parse(answer.now) - Date.now();
  list.total = answer.total;
  list.runs = new Map(answer.runs.map((r) => [r.run_id, r]));
  fillFacets(answer.facets);
  render();
  if (!list.board) connectBoard(answer.board_seq);
  return answer;
}

function fillFacets(facets) {
  const fill = (select, values) => {
    if (select.options.length > 1) return;
    for (const value of values) select.append(h("option", { value, text: value }));
  };
  fill($("filter-status"), facets.statuses);
  fill($("filter-graph"), facets.graphs);
  fill($("filter-kind"), facets.kinds);
  syncForm();
}

function connectBoard(seq) {
  const control = new AbortController();
  list.board = control;
  follow("/tether/live", {
    signal: control.signal,
    lastId: seq,
    until: () => false,
    onEvent: ({ event, data }) => {
      if (event === "run" && data && data.run_id) changed(data);
    },
  });
}

/* A run changed: shown in place if it is on this page; else the first page is fetched again
   (it may belong there now). */
function changed(run) {
  const here = list.runs.has(run.run_id);
  if (here) {
    list.runs.set(run.run_id, run);
    const old = document.querySelector(`#runs tr[data-run-id="${CSS.escape(run.run_id)}"]`);
    if (old) old.replaceWith(row(run));
  } else if (list.offset === 0) {
    clearTimeout(list.refetch);
    list.refetch = setTimeout(() => loadRuns().catch(() => {}), 150);
  }
  list.onRun(run);
}

/* Running rows tick (no request: the clock is the browser's, corrected by the server's). */
export function tick() {
  for (const tr of document.querySelectorAll("#runs tr[data-run-id]")) {
    const run = list.runs.get(tr.dataset.runId);
    if (run && !TERMINAL.has(run.tether_status)) tr.querySelector(".took").textContent = elapsed(run);
  }
}

export function select(runId) {
  list.selected = runId;
  for (const tr of document.querySelectorAll("#runs tr[data-run-id]")) tr.classList.toggle("selected", tr.dataset.runId === runId);
}

function syncForm() {
  const f = list.filter;
  $("filter-q").value = f.q;
  $("filter-status").value = f.status;
  $("filter-graph").value = f.graph;
  $("filter-kind").value = f.kind;
  $("filter-time").value = f.time;
  $("filter-group").checked = f.group;
  $("page-size").value = String(list.limit);
}

export function setThread(threadId) {
  list.filter.thread = threadId;
  list.offset = 0;
  list.onNavigate();
}

/* The list's part of the address: #/...?status=cancelled&graph=... */
export function toParams(params) {
  const f = list.filter;
  for (const key of ["q", "status", "graph", "kind", "time", "thread"]) if (f[key]) params.set(key, f[key]);
  if (f.group) params.set("group", "1");
  if (list.limit !== 50) params.set("limit", String(list.limit));
  if (list.offset) params.set("offset", String(list.offset));
}

export function fromParams(params) {
  const f = list.filter;
  for (const key of ["q", "status", "graph", "kind", "time", "thread"]) f[key] = params.get(key) || "";
  f.group = params.get("group") === "1";
  list.limit = Number(params.get("limit")) || 50;
  list.offset = Number(params.get("offset")) || 0;
  syncForm();
}

export function initRuns() {
  let typing;
  const changedFilter = () => {
    list.offset = 0;
    list.onNavigate();
  };
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { list.filter.q = $("filter-q").value.trim(); changedFilter(); }, 250);
  });
  for (const [id, key] of [["filter-status", "status"], ["filter-graph", "graph"], ["filter-kind", "kind"], ["filter-time", "time"]]) {
    $(id).addEventListener("change", () => { list.filter[key] = $(id).value; changedFilter(); });
  }
  $("filter-group").addEventListener("change", () => { list.filter.group = $("filter-group").checked; list.onNavigate(); });
  $("page-size").addEventListener("change", () => { list.limit = Number($("page-size").value); changedFilter(); });
  $("page-newer").addEventListener("click", () => { list.offset = Math.max(0, list.offset - list.limit); list.onNavigate(); });
  $("page-older").addEventListener("click", () => { list.offset += list.limit; list.onNavigate(); });
}

