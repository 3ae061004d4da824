/* A graph's nodes and edges (GET /assistants/{id}/graph) drawn as inline SVG, in layers:
   each node one layer below the lowest of its predecessors, ignoring the edges that close a
   cycle (those are drawn as curves on the right). No dependencies. */

const NS = "http://www.w3.org/2000/svg";
const W = 130, H = 30, GAP_X = 34, GAP_Y = 46, PAD = 24;
const TERMINALS = new Set(["__start__", "__end__"]);

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

/* Edges that close a cycle, found by a depth-first search from __start__. */
function backEdges(ids, out) {
  const state = new Map();
  const back = new Set();
  const visit = (id) => {
    state.set(id, 1);
    for (const t of out.get(id)) {
      if (state.get(t) === 1) back.add(id + "\u0000" + t);
      else if (!state.has(t)) visit(t);
    }
    state.set(id, 2);
  };
  for (const id of ["__start__", ...ids]) if (out.has(id) && !state.has(id)) visit(id);
  return back;
}

function layout(graph) {
  const ids = graph.nodes.map((n) => n.id);
  const out = new Map(ids.map((id) => [id, []]));
  const edges = graph.edges.filter((e) => out.has(e.source) && out.has(e.target));
  for (const e of edges) out.get(e.source).push(e.target);
  const back = backEdges(ids, out);
  const forward = edges.filter((e) => !back.has(e.source + "\u0000" + e.target));
  const level = new Map(ids.map((id) => [id, 0]));
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const e of forward) {
      if (level.get(e.target) < level.get(e.source) + 1) {
        level.set(e.target, level.get(e.source) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  if (level.has("__end__")) {
    level.set("__end__", Math.max(...ids.map((id) => (id === "__end__" ? 0 : level.get(id) + 1))));
  }
  const rows = [];
  for (const id of ids) (rows[level.get(id)] ||= []).push(id);
  const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
  const width = PAD * 2 + widest * W + (widest - 1) * GAP_X + 60;
  const pos = new Map();
  rows.forEach((row, depth) => {
    if (!row) return;
    const span = row.length * W + (row.length - 1) * GAP_X;
    row.forEach((id, i) => {
      pos.set(id, { x: (width - 60 - span) / 2 + i * (W + GAP_X), y: PAD + depth * (H + GAP_Y) });
    });
  });
  const height = PAD * 2 + rows.length * H + (rows.length - 1) * GAP_Y;
  return { pos, edges, back, width, height };
}

function edgePath(a, b, isBack) {
  if (!isBack) {
    const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
    const my = (y1 + y2) / 2;
    return `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
  }
  const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
  const bulge = 30 + Math.abs(y1 - y2) / 4;
  if (a === b) return `M${x1 - 20},${y1 - H / 2} C${x1 + 10},${y1 - H - 14} ${x1 + 50},${y1} ${x1},${y1 + 4}`;
  return `M${x1},${y1} C${x1 + bulge},${y1} ${x2 + bulge},${y2} ${x2},${y2}`;
}

/* Draw `graph` into `container`; returns { mark(classes) } where classes maps a node id to
   "running", "cancelled", "failed", "waiting" or "done". */
function render(container, graph) {
  container.replaceChildren();
  const { pos, edges, back, width, height } = layout(graph);
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                       "aria-label": `graph: ${graph.nodes.map((n) => n.name).join(", ")}` }, container);
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                                markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#94a3b8" }, marker);
  for (const e of edges) {
    const isBack = back.has(e.source + "\u0000" + e.target);
    el("path", { d: edgePath(pos.get(e.source), pos.get(e.target), isBack),
                 class: "edge" + (e.conditional ? " conditional" : ""),
                 "marker-end": "url(#arrow)" }, svg);
  }
  const groups = new Map();
  for (const n of graph.nodes) {
    const p = pos.get(n.id);
    const g = el("g", { class: "node" + (TERMINALS.has(n.id) ? " terminal" : ""),
                        "data-node": n.id }, svg);
    el("rect", { x: p.x, y: p.y, width: W, height: H, rx: TERMINALS.has(n.id) ? 15 : 5 }, g);
    const label = el("text", { x: p.x + W / 2, y: p.y + H / 2 }, g);
    label.textContent = n.name.length > 18 ? n.name.slice(0, 17) + "…" : n.name;
    const title = el("title", {}, g);
    title.textContent = n.name;
    groups.set(n.id, g);
  }
  return {
    mark(classes) {
      for (const [id, g] of groups) {
        const base = "node" + (TERMINALS.has(id) ? " terminal" : "");
        const extra = classes.get(id);
        g.setAttribute("class", extra ? `${base} ${extra}` : base);
      }
    },
  };
}

export { render, layout };
