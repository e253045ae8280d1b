// Shared by every panel screen: the JSON API, safe DOM building, toasts, copying, the live stream.
// Ticket and model text only ever reaches the page through textContent (see el()).

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.error && body.error.message) || `request failed (${status})`;
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

let csrfToken = null;
let skewMs = 0; // the server's clock minus this browser's, from each answer's Date header

// Now, by the server's clock: ages and deadlines stay right on a laptop whose clock is off.
export function serverNow() {
  return Date.now() + skewMs;
}

async function csrf() {
  if (csrfToken === null) {
    const me = await api("/api/v1/me");
    csrfToken = me.csrf_token || "";
  }
  return csrfToken;
}

// fetch with the session cookie; state changes carry the CSRF token of /api/v1/me.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-Baton-CSRF"] = await csrf();
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) skewMs = date - Date.now();
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return data;
}

// Build an element; `text` is set with textContent, so markup in it stays text.
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  for (const [name, value] of Object.entries(options.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child) node.append(child);
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export const viewer = {
  id: Number(document.body.dataset.memberId || 0),
  name: document.body.dataset.memberName || "",
  role: document.body.dataset.role || "",
  get senior() {
    return this.role === "engineer" || this.role === "admin";
  },
};

export function toast(message, kind = "info", seconds = 6) {
  const box = document.getElementById("toasts");
  const item = el("div", { class: `toast toast-${kind}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), seconds * 1000);
}

// A toast that should survive a page change (the pick-up race opens another page).
export function toastAfterNavigation(message, kind = "warn") {
  sessionStorage.setItem("baton.toast", JSON.stringify({ message, kind }));
}

export function showPendingToast() {
  const saved = sessionStorage.getItem("baton.toast");
  if (!saved) return;
  sessionStorage.removeItem("baton.toast");
  try {
    const { message, kind } = JSON.parse(saved);
    toast(message, kind, 10);
  } catch {
    /* a damaged entry is dropped */
  }
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // An iframe without clipboard-write permission: the old way still works on a click.
    const area = el("textarea", { class: "copy-buffer", attrs: { readonly: "", "aria-hidden": "true" } });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

// When the server received it, on the server's clock (see serverNow).
export function receivedAtMs(item) {
  if (typeof item.age_seconds === "number") return serverNow() - item.age_seconds * 1000;
  return Date.parse(item.received_at);
}

export function formatAge(ms) {
  const seconds = Math.max(0, Math.round((serverNow() - ms) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d`;
}

export const STATE_LABELS = {
  pending: "Preparing…",
  writing: "Writing…",
  ready: "Ready",
  fallback: "No AI",
};

// A pending handoff whose fields have begun to arrive is "writing".
export function stateBadge(handoff) {
  const state = handoff.state === "pending" && handoff.writing ? "writing" : handoff.state;
  return el("span", {
    class: `badge badge-${state}`,
    text: STATE_LABELS[state] || state,
    attrs: { title: state === "fallback" ? "The AI was unavailable: built from the ticket" : null },
  });
}

export function ticketLabel(escalation) {
  const number = escalation.ticket.number || escalation.ticket.id;
  return `#${number} ${escalation.ticket.title || ""}`.trim();
}

const EVENTS = [
  "escalation.created", "escalation.claimed", "handoff.pending", "handoff.writing", "handoff.ready",
  "handoff.fallback", "handoff.stale",
];

// The live stream. onOpen runs on every (re)connection: the caller re-reads what it shows, so
// an event missed while disconnected cannot leave a stale screen. EventSource retries network
// errors by itself but gives up for good on an error answer (a 503 during a deploy): then a new
// one is made, after a growing pause.
export function openStream({ onEvent, onOpen, onDown }) {
  if (!("EventSource" in window)) return;
  let pause = 2000;
  const connect = () => {
    const source = new EventSource("/api/v1/stream");
    source.addEventListener("open", () => {
      pause = 2000;
      document.documentElement.dataset.live = "open"; // what is published from now on arrives
      if (onOpen) onOpen();
    });
    source.addEventListener("error", () => {
      document.documentElement.dataset.live = "down";
      if (onDown) onDown();
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, pause);
        pause = Math.min(pause * 2, 60000);
      }
    });
    for (const kind of EVENTS) {
      source.addEventListener(kind, (event) => {
        let data = {};
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        onEvent(kind, data);
      });
    }
  };
  connect();
  // Back from offline (a laptop lid, a VPN drop): re-read at once, whatever the stream does.
  window.addEventListener("online", () => onOpen && onOpen());
}
