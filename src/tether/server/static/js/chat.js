/* The chat view of a run whose state has `messages`: the conversation, tokens streaming in
   (`messages` events of the Agent Server's stream: [message chunk, metadata]), tool calls
   shown with their results or as cancelled, "Stop generating", and a box to say more. */

import { api } from "./api.js";
import { $, h, json } from "./dom.js";
import { view, TERMINAL } from "./run.js";

const WHO = { human: "You", user: "You", ai: "Assistant", assistant: "Assistant", system: "System", tool: "Tool" };
const chat = { streaming: new Map(), panel: null };

export function hasChat(values) {
  return Boolean(values) && Array.isArray(values.messages);
}

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === "string" ? part : part.text || "")).join("");
  return content === null || content === undefined ? "" : json(content);
}

function role(message) {
  const type = String(message.type || message.role || "").replace(/MessageChunk$|Message$/, "").toLowerCase();
  return type === "user" ? "human" : type === "assistant" ? "ai" : type;
}

function isCancelled(result) {
  return result.status === "error" && text(result.content).startsWith("Cancelled:");
}

function resultView(result, live) {
  if (!result) {
    return h("div.tool-result.pending", { text: live ? "running…" : "no result" });
  }
  if (isCancelled(result)) {
    return h("div.tool-result.cancelled", {}, h("span.chip.cancelled", { text: "cancelled" }), " ", text(result.content).replace(/^Cancelled:\s*/, ""));
  }
  const failed = result.status === "error";
  return h(`div.tool-result${failed ? ".failed" : ""}`, {}, failed ? h("span.chip.failed", { text: "error" }) : null, failed ? " " : null, text(result.content));
}

function args(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return json(value, 0);
  return Object.entries(value).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ");
}

function toolCalls(message, results, live) {
  const calls = message.tool_calls || [];
  if (!calls.length) return null;
  return h("ul.tool-calls", {}, calls.map((call) => h("li.tool-call", { dataset: { toolCallId: call.id || "" } },
    h("div.call", {}, h("span.tool-icon", { "aria-hidden": "true", text: "⚙" }), h("code", { text: `${call.name}(${args(call.args)})` })),
    resultView(results.get(call.id), live))));
}

function bubble(message, results, live) {
  const kind = role(message);
  const stopped = message.response_metadata && message.response_metadata.finish_reason === "cancelled";
  return h(`li.msg.${kind}`, { dataset: { role: kind, id: message.id || "" } },
    h("div.who", { text: WHO[kind] || kind }),
    h("div.bubble", {}, text(message.content) ? h("p.content", { text: text(message.content) }) : null,
      stopped ? h("p.note", { text: "Stopped while answering: the text so far was kept." }) : null,
      toolCalls(message, results, live)));
}

function inFlight() {
  return view.detail && !TERMINAL.has(view.detail.run.tether_status) && view.detail.run.tether_status !== "interrupted";
}

function messagesList() {
  const messages = (view.values && view.values.messages) || [];
  const results = new Map();
  for (const m of messages) if (role(m) === "tool" && m.tool_call_id) results.set(m.tool_call_id, m);
  const known = new Set(messages.map((m) => m.id));
  const live = inFlight();
  const items = messages.filter((m) => !(role(m) === "tool" && m.tool_call_id && messages.some((o) => (o.tool_calls || []).some((c) => c.id === m.tool_call_id))))
    .map((m) => bubble(m, results, live));
  for (const [id, chunk] of chat.streaming) {
    if (known.has(id)) chat.streaming.delete(id);
    else items.push(h("li.msg.ai.streaming", { dataset: { role: "ai", id } }, h("div.who", { text: "Assistant" }),
      h("div.bubble", { "aria-busy": "true" }, h("p.content", { text: chunk.text }), h("span.cursor", { "aria-hidden": "true" }))));
  }
  return h("ol.chat#chat-messages", { "aria-label": "Conversation", "aria-live": "polite" }, items);
}

async function stopGenerating(button) {
  const run = view.detail.run;
  button.disabled = true;
  try {
    await api(`/threads/${encodeURIComponent(run.thread_id)}/runs/${encodeURIComponent(run.run_id)}/cancel`,
      { method: "POST", body: { reason: "stopped generating from the chat" } });
  } catch (error) {
    $("action-error").textContent = error.message;
    button.disabled = false;
  }
}

async function send(event) {
  event.preventDefault();
  const box = $("chat-input");
  const words = box.value.trim();
  if (!words) return;
  const run = view.detail.run;
  try {
    const started = await api(`/threads/${encodeURIComponent(run.thread_id)}/runs`, { method: "POST",
      body: { assistant_id: run.graph_id, input: { messages: [{ role: "user", content: words }] } } });
    box.value = "";
    view.go(started.run_id, "chat");
  } catch (error) {
    $("action-error").textContent = error.message;
  }
}

export function renderChat(panel) {
  chat.panel = panel;
  const live = inFlight();
  const controls = live
    ? h("div.chat-controls", {}, h("button.danger#stop-generating", { type: "button", onclick: (e) => stopGenerating(e.currentTarget) }, "Stop generating"))
    : h("form.chat-composer", { onsubmit: send },
      h("label.sr-only", { for: "chat-input", text: "Message" }),
      h("textarea#chat-input", { rows: 2, placeholder: "Say something to continue the conversation" }),
      h("button.primary", { type: "submit" }, "Send"));
  panel.replaceChildren(h("section.card.chat-card", {}, messagesList(), controls));
  const list = $("chat-messages");
  list.scrollTop = list.scrollHeight;
}

/* A stream event for the chat: `values` (the whole state) or `messages` ([chunk, metadata]). */
export function chatEvent(kind, data) {
  if (kind === "messages") {
    const [chunk] = Array.isArray(data) ? data : [data];
    if (!chunk || role(chunk) !== "ai") return;
    const id = chunk.id || "streaming";
    const entry = chat.streaming.get(id) || { text: "" };
    entry.text += text(chunk.content);
    chat.streaming.set(id, entry);
  }
  if (chat.panel && !chat.panel.hidden && view.tab === "chat") {
    const old = $("chat-messages");
    if (old) {
      const fresh = messagesList();
      old.replaceWith(fresh);
      fresh.scrollTop = fresh.scrollHeight;
    }
  }
}

export function resetChat() {
  chat.streaming.clear();
}
