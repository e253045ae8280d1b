// The queue: escalations of the tenant (a technician's own), live, with the bell and pick-up.
import {
  api, clear, el, formatAge, openStream, receivedAtMs, show, stateBadge, ticketLabel,
  toast, toastAfterNavigation, viewer,
} from "./common.js";

const list = document.getElementById("queue");
const empty = document.getElementById("queue-empty");
const errorBox = document.getElementById("queue-error");
const liveState = document.getElementById("live-state");
const arrivals = document.getElementById("arrivals");
const bell = document.getElementById("bell");
const bellCount = document.getElementById("bell-count");
const bellList = document.getElementById("bell-list");

const items = new Map(); // id -> escalation view (+ receivedAt, unread)
const expanded = new Set();
const fresh = new Set(); // highlighted for a moment after a live arrival
const arrivedLive = new Set(); // every escalation that arrived while this page was open
// What the first load showed. An arrival is anything else the stream announces, even when a
// re-read (on reconnect) fetched its row before the event's own fetch came back.
let presentAtOpen = null;
const newSinceLoad = []; // ids, newest first, for the bell
let unseen = 0;
let filter = "open";

function matches(item) {
  return filter === "all" || item.state === filter;
}

function claimText(item) {
  if (!item.claim) return "Open";
  return item.claim.member_id === viewer.id ? "Picked up by you" : `Picked up by ${item.claim.name}`;
}

function newNotes(count) {
  return `${count} new ${count === 1 ? "note" : "notes"}`;
}

function previewBody(item) {
  const box = el("div", { class: "preview", attrs: { id: `preview-${item.id}` } });
  if (item.reason) {
    box.append(el("p", { class: "reason", text: item.reason }));
  }
  const handoff = item.handoff || {};
  if (handoff.state === "pending" && !handoff.likely_cause) {
    box.append(el("p", { class: "muted", text: "The handoff is being written." }));
  } else {
    const head = el("p", { class: "preview-head" }, [
      el("strong", { text: "Likely cause" }),
      handoff.confidence ? el("span", { class: `badge conf-${handoff.confidence}`, text: `${handoff.confidence} confidence` }) : null,
    ]);
    box.append(head, el("p", { text: handoff.likely_cause || "Not known yet." }));
    if (handoff.state === "pending") {
      box.append(el("p", { class: "muted", text: "The rest of the handoff is still being written." }));
    }
    if (handoff.state === "fallback") {
      box.append(el("p", { class: "muted", text: "The AI was unavailable; this comes from the ticket alone." }));
    }
  }
  return box;
}

function renderRow(item) {
  const classes = ["row"];
  if (item.unread) classes.push("unread");
  if (fresh.has(item.id)) classes.push("arrived");
  const attrs = { "data-id": item.id };
  if (arrivedLive.has(item.id)) attrs["data-arrived"] = "live"; // stays after the highlight fades
  const row = el("li", { class: classes.join(" "), attrs });

  const title = el("a", {
    class: "row-title",
    text: ticketLabel(item),
    attrs: { href: `/panel/escalations/${item.id}`, "data-key": `open-${item.id}` },
  });
  const meta = el("div", { class: "row-meta" }, [
    el("span", { text: item.escalated_by || "someone", attrs: { title: "Escalated by" } }),
    el("span", {
      class: "age",
      text: formatAge(item.receivedAt),
      attrs: { "data-received": item.receivedAt, title: "Waiting for" },
    }),
    stateBadge(item.handoff),
    item.handoff.new_notes > 0 && item.handoff.state !== "pending"
      ? el("span", { class: "badge badge-stale", text: newNotes(item.handoff.new_notes) })
      : null,
    el("span", { class: item.claim ? "claim claimed" : "claim", text: claimText(item) }),
  ]);
  const dot = item.unread
    ? el("span", { class: "dot", attrs: { role: "img", "aria-label": "Unread" } })
    : el("span", { class: "dot-space", attrs: { "aria-hidden": "true" } });
  const main = el("div", { class: "row-main" }, [dot, el("div", { class: "row-text" }, [title, meta])]);

  const open = expanded.has(item.id);
  const toggle = el("button", {
    class: "btn btn-ghost",
    text: open ? "Hide" : "Preview",
    attrs: {
      type: "button",
      "aria-expanded": open ? "true" : "false",
      "aria-controls": `preview-${item.id}`,
      "aria-label": `${open ? "Hide" : "Preview"} likely cause of ${ticketLabel(item)}`,
      "data-key": `preview-${item.id}`,
    },
  });
  toggle.addEventListener("click", () => {
    if (expanded.has(item.id)) expanded.delete(item.id);
    else expanded.add(item.id);
    render();
  });
  const actions = el("div", { class: "row-actions" }, [toggle]);
  if (viewer.senior && !item.claim) {
    const pick = el("button", {
      class: "btn btn-primary pick",
      text: "Pick up",
      attrs: { type: "button", "aria-label": `Pick up ${ticketLabel(item)}`, "data-key": `pick-${item.id}` },
    });
    pick.addEventListener("click", () => pickUp(item, pick));
    actions.append(pick);
  }
  row.append(main, actions);
  if (open) row.append(previewBody(item));
  return row;
}

function render() {
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.key
    : null;
  const shown = [...items.values()].filter(matches).sort((a, b) => b.receivedAt - a.receivedAt);
  clear(list);
  for (const item of shown) list.append(renderRow(item));
  show(empty, shown.length === 0);
  if (focused) {
    const again = list.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function remember(view, { unread } = {}) {
  const previous = items.get(view.id);
  const item = { ...view, receivedAt: receivedAtMs(view) };
  if (typeof view.unread !== "boolean") {
    item.unread = unread !== undefined ? unread : previous ? previous.unread : false;
  }
  items.set(item.id, item);
  return item;
}

async function loadQueue() {
  try {
    const data = await api(`/api/v1/escalations?state=${encodeURIComponent(filter)}`);
    // Replace what this filter shows: a missed event cannot leave a stale row behind.
    for (const [id, item] of items) {
      if (matches(item)) items.delete(id);
    }
    for (const view of data.items || []) remember(view);
    if (presentAtOpen === null) presentAtOpen = new Set(items.keys());
    show(errorBox, false);
  } catch (error) {
    errorBox.textContent = `Could not load the queue: ${error.message}`;
    show(errorBox, true);
  } finally {
    list.setAttribute("aria-busy", "false");
    render();
  }
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadQueue, 150);
}

async function pickUp(item, button) {
  button.disabled = true;
  button.textContent = "Picking up…";
  try {
    await api(`/api/v1/escalations/${item.id}/claim`, { method: "POST" });
    window.location.assign(`/panel/escalations/${item.id}`);
  } catch (error) {
    if (error.status === 409) {
      const by = error.body.claimed_by;
      const name = (by && typeof by === "object" ? by.name : by) || "someone else";
      toastAfterNavigation(`Already picked up by ${name}`);
      window.location.assign(`/panel/escalations/${item.id}`);
      return;
    }
    toast(`Could not pick it up: ${error.message}`, "error");
    button.disabled = false;
    button.textContent = "Pick up";
  }
}

// --- the bell: escalations that arrived since the queue was opened -------------------------

function renderBell() {
  bellCount.textContent = String(unseen);
  show(bellCount, unseen > 0);
  bell.classList.toggle("ringing", unseen > 0);
  bell.setAttribute("aria-label", `New escalations since you opened the queue: ${newSinceLoad.length}`);
  const ul = bellList.querySelector("ul");
  clear(ul);
  for (const id of newSinceLoad) {
    const item = items.get(id);
    if (!item) continue;
    const button = el("button", { class: "bell-item", attrs: { type: "button" } }, [
      el("span", { class: "bell-title", text: ticketLabel(item) }),
      el("span", { class: "bell-meta", text: `${item.escalated_by || "someone"} · ${item.claim ? claimText(item) : "open"}` }),
    ]);
    button.addEventListener("click", () => openFromBell(id));
    ul.append(el("li", {}, [button]));
  }
  show(bellList.querySelector(".bell-empty"), newSinceLoad.length === 0);
}

function setBellOpen(open) {
  show(bellList, open);
  bell.setAttribute("aria-expanded", open ? "true" : "false");
  if (open) {
    unseen = 0;
    renderBell();
    const first = bellList.querySelector("button");
    if (first) first.focus();
  }
}

// The pick-up flow from the bell: show the escalation with its preview, Pick up focused.
function openFromBell(id) {
  setBellOpen(false);
  const item = items.get(id);
  if (item && !matches(item)) setFilter("all");
  expanded.add(id);
  render();
  const row = list.querySelector(`[data-id="${id}"]`);
  if (!row) return;
  row.scrollIntoView({ block: "center" });
  (row.querySelector(".pick") || row.querySelector(".row-title")).focus();
}

bell.addEventListener("click", () => setBellOpen(bellList.hidden));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !bellList.hidden) {
    setBellOpen(false);
    bell.focus();
  }
});
document.addEventListener("click", (event) => {
  if (!bellList.hidden && !event.target.closest(".bell-wrap")) setBellOpen(false);
});

// --- live updates ---------------------------------------------------------------------------

async function refreshOne(id, { arrival = false } = {}) {
  let view;
  try {
    view = await api(`/api/v1/escalations/${id}`);
  } catch {
    return; // not ours to see (a technician), or gone
  }
  const isNew = !items.has(id);
  const item = remember(view, { unread: isNew ? true : undefined });
  const arrived = arrival && !arrivedLive.has(id) && !(presentAtOpen && presentAtOpen.has(id));
  if (arrived) {
    fresh.add(id);
    arrivedLive.add(id);
    setTimeout(() => {
      fresh.delete(id);
      const row = list.querySelector(`[data-id="${id}"]`);
      if (row) row.classList.remove("arrived");
    }, 4000);
    newSinceLoad.unshift(id);
    if (bellList.hidden) unseen += 1;
    renderBell();
    arrivals.append(el("p", { text: `New escalation: ${ticketLabel(item)}, from ${item.escalated_by || "someone"}` }));
  }
  render();
}

openStream({
  onOpen() {
    show(liveState, false);
    reloadSoon();
  },
  onDown() {
    show(liveState, true);
  },
  onEvent(kind, data) {
    const id = Number(data.escalation_id);
    if (!id) return;
    if (kind === "escalation.created") refreshOne(id, { arrival: true });
    else if (kind === "handoff.writing") {
      // A card needs the first of these ("writing"), and the one that brings the likely cause.
      const item = items.get(id);
      const handoff = item ? item.handoff : null;
      if (handoff && (!handoff.writing || (!handoff.likely_cause && data.fields.includes("likely_cause")))) {
        refreshOne(id);
      }
    } else if (items.has(id) || filter !== "open") refreshOne(id);
  },
});

// --- filters, ages, metric card ---------------------------------------------------------------

function setFilter(state) {
  filter = state;
  for (const button of document.querySelectorAll(".filter")) {
    button.setAttribute("aria-pressed", button.dataset.state === state ? "true" : "false");
  }
}

for (const button of document.querySelectorAll(".filter")) {
  button.addEventListener("click", () => {
    setFilter(button.dataset.state);
    render();
    loadQueue();
  });
}

setInterval(() => {
  for (const node of list.querySelectorAll(".age")) {
    node.textContent = formatAge(Number(node.dataset.received));
  }
}, 15000);

function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

async function loadMetricCard() {
  const card = document.getElementById("metric-card");
  let data;
  try {
    data = await api("/api/v1/analytics/escalations?days=7");
  } catch {
    return; // not available (yet, or not for this role): the slot stays hidden
  }
  if (!data) return;
  const ttfa = data.time_to_first_action_seconds || {};
  const ready = (data.time_to_ready_seconds || {}).all || {};
  const recovered = data.minutes_recovered_per_escalation || {};
  const figure = (value, label, note, why) =>
    el("div", { class: "figure", attrs: { title: why } }, [
      el("span", { class: "figure-value", text: value }),
      el("span", { class: "figure-label", text: label }),
      note ? el("span", { class: "figure-note", text: note }) : null,
    ]);
  card.append(
    figure(minutes(ttfa.median), "to first action (median, 7 days)", `n = ${ttfa.n ?? 0}`),
    figure(String(ready.n ?? 0), "handoffs ready", ready.p50 != null ? `median ${minutes(ready.p50)}` : null),
    recovered.value == null
      ? figure("—", "minutes recovered", "not enough data yet", recovered.reason)
      : figure(Number(recovered.value).toFixed(1), "minutes recovered per escalation", "vs. the stopwatched baseline"),
  );
  show(card, true);
}

renderBell();
loadQueue();
loadMetricCard();
