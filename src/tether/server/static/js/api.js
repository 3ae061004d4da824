/* Talking to the server: the API key (kept in sessionStorage: it goes when the tab closes),
   JSON requests with errors worth reading, and Server-Sent Events read with fetch (an
   EventSource cannot send the key), reconnecting with Last-Event-ID. */

const KEY = "tether.apiKey";

export const auth = {
  required: false,
  key: sessionStorage.getItem(KEY) || "",
  /* Called with "missing" or "rejected" when the server answers 401. */
  onRefused: () => {},
  set(key) {
    this.key = key;
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  return auth.key ? { "x-api-key": auth.key, ...extra } : extra;
}

function readable(detail, fallback) {
  if (!detail) return fallback;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d.loc ? `${d.loc.filter((p) => p !== "body").join(".")}: ${d.msg}` : d.msg || JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers(body === undefined ? {} : { "content-type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const answer = await fetch(path, init);
  if (answer.status === 401) {
    auth.onRefused(auth.key ? "rejected" : "missing");
    throw new ApiError(401, auth.key ? "this API key was not accepted" : "an API key is needed");
  }
  const type = answer.headers.get("content-type") || "";
  const data = type.includes("json") ? await answer.json() : null;
  if (!answer.ok) throw new ApiError(answer.status, readable(data && data.detail, answer.statusText));
  return data;
}

function parseEvent(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (!data.length) return null;
  const text = data.join("\n");
  try {
    return { event, id, data: JSON.parse(text) };
  } catch {
    return { event, id, data: text };
  }
}

/* Follow an SSE stream until `signal` aborts it. `onEvent({event, id, data})` for each event;
   `onEnd()` once the server ends the stream for good (a 404, or `until()` says so); a stream
   cut otherwise is resumed after the last event id. */
export async function follow(path, { signal, lastId = null, onEvent, onOpen, onEnd, until, retry = 1000 }) {
  let last = lastId;
  while (!signal.aborted) {
    try {
      const extra = last !== null && last !== undefined ? { "last-event-id": String(last) } : {};
      const answer = await fetch(path, { headers: headers(extra), signal });
      if (answer.status === 401) {
        auth.onRefused(auth.key ? "rejected" : "missing");
        return;
      }
      if (!answer.ok || !answer.body) {
        if (onEnd) onEnd(answer.status);
        return;
      }
      if (onOpen) onOpen();
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
          const parsed = parseEvent(block);
          if (!parsed) continue;
          if (parsed.id !== null) last = parsed.id;
          onEvent(parsed);
        }
      }
      if (!until || until()) {
        if (onEnd) onEnd(200);
        return;
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}
