/* Building the page: elements from data (text only: nothing the server sends is parsed as
   HTML), and the few words and numbers the page writes (counts, times, durations, JSON). */

export const $ = (id) => document.getElementById(id);

/* h("a#id.link", {href, onclick}, child, ...): an element with an id, classes, properties and
   children (strings become text nodes; null and false are skipped). `style` is an object
   (set through the CSSOM: the page's CSP allows no style attributes). */
export function h(tag, props = {}, ...children) {
  const [name, ...parts] = tag.split(/(?=[.#])/);
  const node = document.createElement(name);
  const classes = parts.filter((p) => p[0] === ".").map((p) => p.slice(1));
  const id = parts.find((p) => p[0] === "#");
  if (classes.length) node.className = classes.join(" ");
  if (id) node.id = id.slice(1);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key in node && key !== "list" && typeof value !== "string") node[key] = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

export function plural(count, one, many = `${one}s`) {
  return `${count.toLocaleString("en")} ${count === 1 ? one : many}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/* 14:03:22.104 (local time), with the date when it is not today. */
export function clock(iso, withMs = true) {
  if (!iso) return "";
  const at = new Date(iso);
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
  const ms = withMs ? `.${pad(at.getMilliseconds(), 3)}` : "";
  const today = new Date().toDateString() === at.toDateString();
  const day = today ? "" : `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} `;
  return day + time + ms;
}

export function ago(iso, now = Date.now()) {
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return "";
  if (ms < 5000) return "just now";
  if (ms < 60000) return `${Math.floor(ms / 1000)} s ago`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)} min ago`;
  if (ms < 86400000) return `${Math.floor(ms / 3600000)} h ago`;
  return clock(iso, false);
}

export function json(value, indent = 2) {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, indent);
}

/* A short one-line form of a value. */
export function brief(value, max = 120) {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function shortId(id) {
  return id ? `…${id.slice(-8)}` : "";
}

function isMessage(value) {
  return value && typeof value === "object" && typeof value.type === "string" && "content" in value;
}

/* A chat message in one line (role, text, tool calls), its JSON a click away. */
function messageView(message) {
  const content = typeof message.content === "string" ? message.content : JSON.stringify(message.content);
  const calls = (message.tool_calls || []).map((c) => c.name).join(", ");
  const extra = [calls ? ` → calls ${calls}` : "", message.status === "error" ? " (error)" : ""].join("");
  return h("div.message-value", {}, h("span.chip", { text: message.type }), " ",
    h("span", { text: (content.length > 300 ? `${content.slice(0, 299)}…` : content) + extra }),
    h("details", {}, h("summary", { text: "JSON" }), h("pre.json", { text: json(message) })));
}

/* A value as readable markup: scalars inline, chat messages as one line, the rest as JSON. */
export function valueView(value) {
  if (value === null || typeof value !== "object") {
    return h("code.value", { text: value === null ? "null" : brief(value, 400) });
  }
  if (isMessage(value)) return messageView(value);
  if (Array.isArray(value) && value.length && value.every(isMessage)) {
    return h("ol.messages-value", {}, value.map((m) => h("li", {}, messageView(m))));
  }
  return h("pre.json", { text: json(value) });
}

export function badge(status) {
  return h(`span.badge.${status}`, { dataset: { status }, text: status });
}

export function setBadge(node, status) {
  node.className = `badge ${status}`;
  node.dataset.status = status;
  node.textContent = status;
}
