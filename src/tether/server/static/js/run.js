/* One run: its header (status, reason, error), the actions that fit it, its tabs, and its
   stream followed live (tasks light the graph and grow the timeline, values refresh the state
   and the chat, lifecycle events extend the audit log). */

import { api, follow } from "./api.js";
import { $, clock, duration, h, setBadge, shortId } from "./dom.js";
import { elapsed, list, setThread } from "./runs.js";
import { renderOverview, markGraph } from "./overview.js";
import { renderTimeline } from "./timeline.js";
import { renderState } from "./state.js";
import { renderAudit } from "./audit.js";
import { renderChat, chatEvent, hasChat } from "./chat.js";
import { showActions } from "./actions.js";

export const TERMINAL = new Set(["success", "error", "cancelled", "timeout"]);
const TABS = ["overview", "timeline", "state", "audit", "chat"];

export const view = {
  runId: null,
  detail: null,
  timeline: null,
  tab: "overview",
  control: null,
  following: null,
  spans: new Map(),
  values: null,
  onTab: () => {},
  go: () => {},             // (runId, tab): show another run
  refreshing: null,
};

export async function openRun(runId, tab) {
  if (view.runId !== runId) {
    if (view.control) view.control.abort();
    Object.assign(view, { runId, detail: null, timeline: null, spans: new Map(), values: null,
      following: null });
    $("stop-reason").value = "";
    $("action-error").textContent = "";
    $("answer-input").value = "";
    $("fork-form").hidden = true;
    for (const id of TABS) $(`panel-${id}`).replaceChildren();
  }
  $("run-empty").hidden = true;
  $("run-view").hidden = false;
  document.body.classList.add("has-run");
  view.tab = TABS.includes(tab) ? tab : "overview";
  if (!view.detail) await refresh();
  else showTab();
}

export function closeRun() {
  if (view.control) view.control.abort();
  Object.assign(view, { runId: null, detail: null, timeline: null, control: null, following: null });
  $("run-view").hidden = true;
  $("run-empty").hidden = false;
  document.body.classList.remove("has-run");
}

let fetching = 0;

/* The run's record and everything the store says of it, fetched again (an answer that comes
   after a newer one's is dropped: it would show an older state). */
async function refresh() {
  const runId = view.runId;
  const mine = ++fetching;
  const detail = await api(`/tether/runs/${encodeURIComponent(runId)}`);
  if (view.runId !== runId || mine !== fetching) return;
  view.detail = detail;
  view.values = detail.kept.values;
  if (!detail.kept.checkpoint_id && detail.run.thread_id) {
    // Queued, not started: the thread's state is what the run will start from.
    const state = await api(`/threads/${encodeURIComponent(detail.run.thread_id)}/state`);
    if (view.runId !== runId || mine !== fetching) return;
    view.values = state.values;
  }
  view.timeline = null;
  if (list.runs.has(runId)) list.runs.set(runId, detail.run);
  if (view.following !== runId) followStream();
  showHeader();
  showActions();
  $("tab-chat").hidden = !hasChat(view.values);
  await showTab();
}

/* Show the run's record as it is in `view.detail` now (after an action's answer). */
export function show() {
  showHeader();
  showActions();
}

function showHeader() {
  const run = view.detail.run;
  $("run-id").textContent = run.run_id;
  $("run-id").title = run.run_id;
  setBadge($("run-status"), run.tether_status);
  const thread = h("button.link", { type: "button", title: `Show the runs of thread ${run.thread_id}`,
    onclick: () => setThread(run.thread_id) }, h("code", { text: shortId(run.thread_id) }));
  $("run-meta").replaceChildren(
    h("span", { text: `graph ${run.graph_id || "?"}` }), " · thread ", thread,
    " · started ", h("time", { datetime: run.started_at || run.created_at, text: clock(run.started_at || run.created_at) }),
    " · ", h("span#run-took", { text: tookText(run) }));
  showBanner();
}

function tookText(run) {
  const took = elapsed(run);
  if (took === "waiting") return `waiting for input since ${clock(pausedAt())}`;
  if (took === "queued") return "queued";
  return `${TERMINAL.has(run.tether_status) ? "took" : "running for"} ${took}`;
}

function pausedAt() {
  const events = view.detail ? view.detail.events : [];
  const finish = [...events].reverse().find((e) => e.phase === "finish");
  return finish ? finish.at : null;
}

export function tickRun() {
  if (!view.detail) return;
  const run = view.detail.run;
  if (!TERMINAL.has(run.tether_status) && run.tether_status !== "interrupted") {
    const took = $("run-took");
    if (took) took.textContent = tookText(run);
  }
}

function showBanner() {
  const { run, error } = view.detail;
  const banner = $("run-banner");
  const reason = run.tether_reason;
  banner.className = `banner ${run.tether_status}`;
  banner.hidden = false;
  if (run.tether_status === "error" && error) {
    banner.replaceChildren(...[
      h("p.banner-title", {}, "Failed", error.node ? [" in node ", h("code", { text: error.node })] : null),
      h("p", { text: error.message || "" }),
      error.traceback ? h("details.traceback", {}, h("summary", { text: "Traceback" }), h("pre", { text: error.traceback })) : null,
    ].filter(Boolean));
  } else if (reason) {
    const verb = { cancelling: "Stopping", cancelled: "Cancelled", timeout: "Timed out" }[run.tether_status] || "Cancel requested";
    banner.replaceChildren(...[
      h("p.banner-title", {}, `${verb} · `, h("span.kind", { text: reason.kind }),
        reason.requested_by ? [" · by ", h("strong", { text: reason.requested_by })] : null,
        " · at ", h("time", { datetime: reason.requested_at, text: clock(reason.requested_at) })),
      h("p.why", { text: reason.message ? `“${reason.message}”` : "" }),
      run.cancel_latency_ms !== null && run.cancel_latency_ms !== undefined
        ? h("p.muted", { text: `Stopped ${duration(run.cancel_latency_ms)} after the request.` }) : null,
    ].filter(Boolean));
  } else if (run.tether_status === "interrupted") {
    banner.replaceChildren(h("p.banner-title", { text: "Paused: waiting for input" }));
  } else {
    banner.hidden = true;
  }
}

async function showTab() {
  const tab = view.tab === "chat" && $("tab-chat").hidden ? "overview" : view.tab;
  for (const id of TABS) {
    const active = id === tab;
    $(`tab-${id}`).setAttribute("aria-selected", String(active));
    $(`tab-${id}`).tabIndex = active ? 0 : -1;
    $(`panel-${id}`).hidden = !active;
  }
  if (!view.detail) return;
  if (tab === "overview") await renderOverview($("panel-overview"));
  if (tab === "audit") renderAudit($("panel-audit"), view.detail.events);
  if (tab === "chat") renderChat($("panel-chat"));
  if (tab === "timeline" || tab === "state") {
    if (!view.timeline) {
      const runId = view.runId;
      const timeline = await api(`/tether/runs/${encodeURIComponent(runId)}/timeline`);
      if (view.runId !== runId) return;
      view.timeline = timeline;
    }
    if (tab === "timeline") renderTimeline($("panel-timeline"), view.timeline, view.spans);
    else renderState($("panel-state"), view.timeline);
  }
}

/* The run's stream from where the detail left off, until the run ends. */
function followStream() {
  const run = view.detail.run;
  if (TERMINAL.has(run.tether_status)) return;
  view.following = run.run_id;
  const control = new AbortController();
  view.control = control;
  const runId = run.run_id;
  follow(`/tether/runs/${encodeURIComponent(runId)}/stream`, {
    signal: control.signal,
    lastId: view.detail.feed_seq,
    until: () => view.runId !== runId || TERMINAL.has(view.detail.run.tether_status),
    onEvent: (event) => { if (view.runId === runId) onEvent(event); },
    onEnd: () => { if (view.runId === runId) scheduleRefresh(0); },
  });
}

function onEvent({ event, data }) {
  const mode = event.split("|")[0];
  if (event.includes("|")) return; // a subgraph's events: its parent's are enough here
  if (mode === "tasks" && data && data.id) {
    const now = Date.now() + list.clockSkew;
    if ("input" in data) view.spans.set(data.id, { name: data.name, start: now, end: null });
    else if (view.spans.has(data.id)) Object.assign(view.spans.get(data.id), { end: now, failed: Boolean(data.error) });
    markGraph();
    if (view.tab === "timeline" && view.timeline) renderTimeline($("panel-timeline"), view.timeline, view.spans);
  } else if (mode === "lifecycle" && data && data.phase) {
    view.detail.events.push(data);
    if (view.tab === "audit") renderAudit($("panel-audit"), view.detail.events);
    if (["terminate", "finish"].includes(data.phase)) scheduleRefresh(50);
  } else if (mode === "values" && data && typeof data === "object") {
    view.values = data;
    if (hasChat(data) && $("tab-chat").hidden) {
      $("tab-chat").hidden = false;
      if (view.tab === "chat") showTab();
    }
    chatEvent("values", data);
  } else if (mode === "messages") {
    chatEvent("messages", data);
  }
}

/* A record change from the live board. */
export function runChanged(run) {
  if (run.run_id !== view.runId) return;
  // Before the first detail has come, it may already be out of date: fetch again.
  if (!view.detail || run.tether_status !== view.detail.run.tether_status) scheduleRefresh(0);
}

export function scheduleRefresh(ms) {
  clearTimeout(view.refreshing);
  view.refreshing = setTimeout(() => refresh().catch((error) => { $("action-error").textContent = error.message; }), ms);
}

export function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => view.onTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      const shown = tabs.filter((t) => !t.hidden);
      const next = shown[(shown.indexOf(tab) + (event.key === "ArrowRight" ? 1 : shown.length - 1)) % shown.length];
      next.focus();
      view.onTab(next.dataset.tab);
    });
  }
}
