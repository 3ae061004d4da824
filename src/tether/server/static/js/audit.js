/* A run's audit log (`store.events`) as a table: phase, time, time since the previous entry,
   node, and the detail as words. */

import { brief, clock, duration, h } from "./dom.js";

const PHASES = {
  create: "created", start: "started", request: "cancel requested", propagate: "cancel propagated",
  terminate_node: "node stopped", cleanup: "cleanup", checkpoint: "final checkpoint",
  terminate: "terminated", finish: "finished", orphan: "orphaned", claim: "claimed", release: "released",
  repair: "thread repaired",
};

function detailView(detail) {
  const entries = Object.entries(detail || {}).filter(([, v]) => v !== null && v !== undefined && v !== "");
  if (!entries.length) return "";
  return h("dl.detail", {}, entries.flatMap(([key, value]) => [
    h("dt", { text: key }),
    h("dd", { text: typeof value === "object" ? brief(value, 300) : String(value) }),
  ]));
}

export function renderAudit(panel, events) {
  let previous = null;
  const rows = events.map((event) => {
    const at = Date.parse(event.at);
    const gap = previous === null ? "" : `+${duration(at - previous)}`;
    previous = at;
    return h("tr", { dataset: { phase: event.phase } },
      h("td", {}, h("span.phase", { text: PHASES[event.phase] || event.phase }), h("code.muted", { text: ` ${event.phase}` })),
      h("td", {}, h("time", { datetime: event.at, text: clock(event.at) })),
      h("td.num", { text: gap }),
      h("td", {}, event.node ? h("code", { text: event.node }) : ""),
      h("td", {}, detailView(event.detail)));
  });
  panel.replaceChildren(h("section.card", {}, h("h3", { text: "Audit log" }),
    h("div.table-wrap", {}, h("table.audit", {},
      h("thead", {}, h("tr", {}, ["Phase", "Time", "+ms", "Node", "Detail"].map((c) => h("th", { scope: "col", text: c })))),
      h("tbody", {}, rows)))));
}
