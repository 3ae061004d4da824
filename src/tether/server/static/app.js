"use strict";
/* tether's run page: runs listed live (short polling), a run's graph with its running nodes,
   its stream and lifecycle (SSE over fetch, so the API key can be sent), Stop and Resume.
   Every value from the server is shown with textContent, never parsed as HTML. */

const POLL_MS = 400;
const LOG_LIMIT = 400;
const TERMINAL = new Set(["success", "error", "cancelled", "timeout"]);
const RESUMABLE = new Set(["cancelled", "timeout", "error"]);
const $ = (id) => document.getElementById(id);

const page = {
  auth: false,
  key: localStorage.getItem("tether.apiKey") || "",
  runs: new Map(),
  clockSkew: 0,
  selected: null,
  stream: null,
  graphs: new Map(),
  drawing: null,
  nodes: new Map(),
  tasks: new Map(),
};

function headers(extra = {}) {
  return page.key ? { "x-api-key": page.key, ...extra } : extra;
}

async function api(path, options = {}) {
  const answer = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (answer.status === 401) {
    showKeyForm("API key needed");
    throw new Error("unauthorized");
  }
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    const detail = body && body.detail ? body.detail : answer.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

function showKeyForm(message) {
  $("key-form").hidden = false;
  setConnection(message, true);
}

function setConnection(text, bad = false) {
  const node = $("connection");
  node.textContent = text;
  node.classList.toggle("bad", bad);
}

/* ---- the runs list -------------------------------------------------------------------- */

function seconds(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 60000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function elapsed(run) {
  const start = Date.parse(run.started_at || run.created_at);
  const end = run.ended_at ? Date.parse(run.ended_at) : Date.now() + page.clockSkew;
  return seconds(end - start);
}

function badge(node, status) {
  node.textContent = status;
  node.className = `badge ${status}`;
  node.dataset.status = status;
}

function renderRow(run) {
  let row = document.querySelector(`tr[data-run-id="${CSS.escape(run.run_id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.runId = run.run_id;
    for (let i = 0; i < 5; i++) row.appendChild(document.createElement("td"));
    row.cells[0].appendChild(document.createElement("span"));
    row.addEventListener("click", () => select(run.run_id));
  }
  badge(row.cells[0].firstChild, run.tether_status);
  row.dataset.status = run.tether_status;
  row.cells[1].textContent = run.graph_id || "";
  row.cells[2].textContent = run.run_id.slice(-12);
  row.cells[2].title = run.run_id;
  row.cells[3].textContent = run.cancel_reason || run.error || "";
  row.cells[3].title = row.cells[3].textContent;
  row.cells[4].textContent = elapsed(run);
  row.classList.toggle("selected", run.run_id === page.selected);
  return row;
}

async function pollRuns() {
  if (page.auth && !page.key) {
    showKeyForm("enter an API key");
    setTimeout(pollRuns, POLL_MS);
    return;
  }
  try {
    const { now, runs } = await api("/tether/runs?limit=50");
    page.clockSkew = Date.parse(now) - Date.now();
    const body = $("runs").tBodies[0];
    const rows = runs.map((run) => renderRow(run));
    body.replaceChildren(...rows);
    page.runs = new Map(runs.map((r) => [r.run_id, r]));
    $("no-runs").hidden = runs.length > 0;
    setConnection(`connected · ${runs.length} runs`);
    if (page.selected && page.runs.has(page.selected)) showRun(page.runs.get(page.selected));
  } catch (error) {
    if (error.message !== "unauthorized") setConnection(`offline: ${error.message}`, true);
  } finally {
    setTimeout(pollRuns, POLL_MS);
  }
}

/* ---- one run -------------------------------------------------------------------------- */

function showRun(run) {
  $("detail").hidden = false;
  $("detail-id").textContent = run.run_id;
  badge($("detail-status"), run.tether_status);
  $("detail-elapsed").textContent = elapsed(run);
  const reason = run.tether_reason;
  const failedIn = run.error_node ? ` (in node ${run.error_node})` : "";
  $("detail-reason").textContent = reason ? `${reason.kind}: ${reason.message}`
    : run.error ? `${run.error}${failedIn}` : "";
  $("detail-traceback").hidden = !run.error_traceback;
  $("detail-traceback").textContent = run.error_traceback || "";
  const stoppable = !TERMINAL.has(run.tether_status);
  $("stop-form").hidden = !stoppable;
  $("stop-button").disabled = run.tether_status === "cancelling";
  $("resume-button").hidden = !RESUMABLE.has(run.tether_status);
  if (page.lastStatus !== run.tether_status) {
    page.lastStatus = run.tether_status;
    refreshLifecycle(run.run_id);
  }
  markNodes();
}

async function select(runId) {
  page.selected = runId;
  page.lastStatus = null;
  page.nodes = new Map();
  page.tasks = new Map();
  $("stream").replaceChildren();
  $("lifecycle").replaceChildren();
  $("action-error").textContent = "";
  document.querySelectorAll("#runs tbody tr").forEach((r) => r.classList.toggle("selected", r.dataset.runId === runId));
  if (page.stream) page.stream.abort();
  page.stream = new AbortController();
  const detail = await api(`/tether/runs/${encodeURIComponent(runId)}`);
  page.runs.set(runId, detail.run);
  await drawGraph(detail.run.graph_id);
  showRun(detail.run);
  follow(runId, page.stream.signal).then(() => refreshRun(runId)).catch(() => {});
}

/* The run's record now (its stream has ended, or a cancel was just accepted). */
async function refreshRun(runId) {
  if (page.selected !== runId) return;
  try {
    const detail = await api(`/tether/runs/${encodeURIComponent(runId)}`);
    page.runs.set(runId, detail.run);
    renderRow(detail.run);
    showRun(detail.run);
  } catch {
    /* the next poll tries again */
  }
}

async function drawGraph(graphId) {
  if (!graphId) return;
  if (!page.graphs.has(graphId)) page.graphs.set(graphId, await api(`/assistants/${encodeURIComponent(graphId)}/graph`));
  page.drawing = TetherGraph.render($("graph"), page.graphs.get(graphId));
}

function markNodes() {
  if (!page.drawing) return;
  const classes = new Map(page.nodes);
  for (const name of page.tasks.values()) classes.set(name, "running");
  page.drawing.mark(classes);
}

async function refreshLifecycle(runId) {
  try {
    const detail = await api(`/tether/runs/${encodeURIComponent(runId)}`);
    if (page.selected !== runId) return;
    const list = $("lifecycle");
    list.replaceChildren(...detail.events.map((e) => logItem(e.phase, [e.node, summary(e.detail)].filter(Boolean).join(" "), e.at)));
    for (const e of detail.events) if (e.phase === "terminate_node" && e.node) page.nodes.set(e.node, "cancelled");
    if (TERMINAL.has(detail.run.tether_status)) page.tasks.clear();
    markNodes();
  } catch (error) {
    $("action-error").textContent = error.message;
  }
}

function summary(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object" && Object.keys(value).length === 0) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 300 ? text.slice(0, 297) + "…" : text;
}

function logItem(tag, text, at) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.className = "tag";
  label.textContent = tag;
  item.append(label, text);
  if (at) item.title = at;
  return item;
}

function append(list, item) {
  list.appendChild(item);
  while (list.children.length > LOG_LIMIT) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

/* Server-Sent Events read with fetch (EventSource cannot send the API key). */
async function follow(runId, signal) {
  const answer = await fetch(`/tether/runs/${encodeURIComponent(runId)}/stream`, { headers: headers(), signal });
  if (!answer.ok || !answer.body) return;
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const event = parseEvent(block);
      if (event && page.selected === runId) onEvent(event);
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length) return null;
  try {
    return { event, data: JSON.parse(data.join("\n")) };
  } catch {
    return { event, data: data.join("\n") };
  }
}

function onEvent({ event, data }) {
  const mode = event.split("|")[0];
  if (mode === "tasks" && data && data.id) {
    if ("input" in data) page.tasks.set(data.id, data.name);
    else {
      page.tasks.delete(data.id);
      if (!page.nodes.has(data.name) || page.nodes.get(data.name) === "done") page.nodes.set(data.name, data.error ? "cancelled" : "done");
    }
    markNodes();
    return;
  }
  if (mode === "lifecycle") {
    append($("lifecycle"), logItem(data.phase, [data.node, summary(data.detail)].filter(Boolean).join(" "), data.at));
    if (data.phase === "terminate_node" && data.node) { page.nodes.set(data.node, "cancelled"); markNodes(); }
    return;
  }
  append($("stream"), logItem(event, summary(data)));
}

/* ---- actions -------------------------------------------------------------------------- */

async function stop(event) {
  event.preventDefault();
  const run = page.runs.get(page.selected);
  if (!run) return;
  $("stop-button").disabled = true;
  $("action-error").textContent = "";
  try {
    const reason = $("stop-reason").value.trim();
    const body = JSON.stringify(reason ? { reason } : {});
    const receipt = await api(`/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.run_id)}/cancel`,
      { method: "POST", body, headers: { "content-type": "application/json" } });
    page.runs.set(run.run_id, receipt);
    showRun(receipt);
    renderRow(receipt);
    if (!TERMINAL.has(receipt.tether_status)) setTimeout(() => refreshRun(run.run_id), 50);
  } catch (error) {
    $("action-error").textContent = error.message;
    $("stop-button").disabled = false;
  }
}

async function resume() {
  $("action-error").textContent = "";
  try {
    const run = await api(`/tether/runs/${encodeURIComponent(page.selected)}/resume`,
      { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    await select(run.run_id);
  } catch (error) {
    $("action-error").textContent = error.message;
  }
}

async function startRun(event) {
  event.preventDefault();
  $("new-run-error").textContent = "";
  try {
    const input = JSON.parse($("new-input").value || "null");
    const thread = await api("/threads", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    const run = await api(`/threads/${encodeURIComponent(thread.thread_id)}/runs`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ assistant_id: $("new-graph").value, input }),
    });
    await select(run.run_id);
  } catch (error) {
    $("new-run-error").textContent = error.message;
  }
}

async function loadGraphs() {
  try {
    const found = await api("/assistants/search", { method: "POST", body: JSON.stringify({ limit: 100 }), headers: { "content-type": "application/json" } });
    $("new-graph").replaceChildren(...found.map((a) => Object.assign(document.createElement("option"), { value: a.graph_id, textContent: a.graph_id })));
  } catch {
    /* shown by the connection status */
  }
}

async function start() {
  $("stop-form").addEventListener("submit", stop);
  $("resume-button").addEventListener("click", resume);
  $("new-run-form").addEventListener("submit", startRun);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    page.key = $("api-key").value.trim();
    localStorage.setItem("tether.apiKey", page.key);
    setConnection("connecting…");
    loadGraphs();
  });
  $("api-key").value = page.key;
  try {
    const config = await (await fetch("/tether/config")).json();
    page.auth = config.auth;
    $("key-form").hidden = !config.auth;
  } catch {
    setConnection("server unreachable", true);
  }
  if (!page.auth || page.key) loadGraphs();
  pollRuns();
}

document.addEventListener("DOMContentLoaded", start);
