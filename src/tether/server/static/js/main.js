/* tether's console: the key, the address (#/run/<id>?<list filters>&tab=...), and the wiring
   between the runs list and the run. */

import { api, auth } from "./api.js";
import { $, h } from "./dom.js";
import { fromParams, initRuns, list, loadRuns, select, tick, toParams } from "./runs.js";
import { closeRun, initTabs, openRun, runChanged, tickRun, view } from "./run.js";
import { initActions } from "./actions.js";
import { resetChat } from "./chat.js";

const state = { runId: null, tab: "overview", listQuery: null, started: false };

function address(runId, tab) {
  const params = new URLSearchParams();
  toParams(params);
  if (runId && tab && tab !== "overview") params.set("tab", tab);
  const query = params.toString();
  return `#/${runId ? `run/${encodeURIComponent(runId)}` : ""}${query ? `?${query}` : ""}`;
}

function go(runId, tab = "overview") {
  const next = address(runId, tab);
  if (location.hash === next) route();
  else location.hash = next;
}

let routing = 0;

/* Show what the address says. A newer navigation wins over one still loading. */
async function route() {
  const mine = ++routing;
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(query);
  const runId = path.startsWith("run/") ? decodeURIComponent(path.slice(4)) : null;
  const tab = params.get("tab") || "overview";
  params.delete("tab");
  fromParams(params);
  const listQuery = params.toString();
  try {
    if (listQuery !== state.listQuery) {
      state.listQuery = listQuery;
      await loadRuns();
      connected();
      if (mine !== routing) return;
    }
    if (runId !== state.runId) resetChat();
    state.runId = runId;
    state.tab = tab;
    select(runId);
    if (runId) await openRun(runId, tab);
    else closeRun();
  } catch (error) {
    if (error.status !== 401) $("connection").textContent = `error: ${error.message}`;
    if (error.status === 404 && runId) $("action-error").textContent = `no run ${runId} here (it may belong to another key)`;
  }
}

function connected() {
  const node = $("connection");
  node.textContent = auth.key ? "connected with a key" : "connected";
  node.classList.remove("bad");
  $("forget-key").hidden = !auth.key;
  $("key-form").hidden = true;
}

function refused(why) {
  const node = $("connection");
  node.textContent = why === "rejected" ? "This API key was not accepted: check it and try again." : "This server needs an API key.";
  node.classList.add("bad");
  $("key-form").hidden = false;
  $("forget-key").hidden = true;
  state.listQuery = null;
}

async function loadGraphs() {
  const found = await api("/assistants/search", { method: "POST", body: { limit: 100 } });
  $("new-graph").replaceChildren(...found.map((a) => h("option", { value: a.graph_id, text: a.graph_id })));
}

async function startRun(event) {
  event.preventDefault();
  $("new-run-error").textContent = "";
  try {
    let input;
    try {
      input = JSON.parse($("new-input").value || "null");
    } catch {
      throw new Error("the input is not valid JSON");
    }
    const thread = await api("/threads", { method: "POST", body: {} });
    const run = await api(`/threads/${encodeURIComponent(thread.thread_id)}/runs`, { method: "POST",
      body: { assistant_id: $("new-graph").value, input } });
    go(run.run_id);
  } catch (error) {
    $("new-run-error").textContent = error.message;
  }
}

function initNewRun() {
  const toggle = $("new-run-toggle");
  toggle.addEventListener("click", async () => {
    const open = $("new-run-form").hidden;
    $("new-run-form").hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open && !$("new-graph").options.length) await loadGraphs().catch((e) => { $("new-run-error").textContent = e.message; });
  });
  $("new-run-form").addEventListener("submit", startRun);
}

function initKey() {
  auth.onRefused = refused;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    auth.set($("api-key").value.trim());
    $("api-key").value = "";
    $("connection").textContent = "connecting…";
    state.listQuery = null;
    if (list.board) list.board.abort();
    list.board = null;
    route();
  });
  $("forget-key").addEventListener("click", () => {
    auth.set("");
    if (list.board) list.board.abort();
    list.board = null;
    location.reload();
  });
}

async function start() {
  initKey();
  initRuns();
  initTabs();
  initActions();
  initNewRun();
  list.onNavigate = () => go(state.runId, state.tab);
  list.href = (runId) => address(runId, "overview");
  list.onRun = runChanged;
  view.onTab = (tab) => go(state.runId, tab);
  view.go = (runId, tab) => go(runId, tab);
  try {
    const config = await (await fetch("/tether/config")).json();
    auth.required = config.auth;
  } catch {
    $("connection").textContent = "the server cannot be reached";
    return;
  }
  if (auth.required && !auth.key) {
    refused("missing");
  } else {
    await route();
  }
  window.addEventListener("hashchange", route);
  setInterval(() => { tick(); tickRun(); }, 1000);
}

start();
