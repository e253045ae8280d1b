// The handoff screen: what was tried first, then cause, facts, steps, prose; filled live as the
// model writes them; stale when the ticket changed since; the Conclude area.
import {
  api, clear, copyText, el, formatAge, openStream, serverNow, show, showPendingToast, stateBadge,
  ticketLabel, toast, viewer,
} from "./common.js";

const root = document.getElementById("handoff");
const id = Number(root.dataset.escalationId);
const deadlineSeconds = Number(root.dataset.deadlineSeconds) || 20;
const LATE_MARGIN_SECONDS = 10; // past deadline + margin the server's word is final
const POLL_MS = 3000; // the safety net under the live stream while pending
const LATE_POLL_MS = 15000;

const $ = (name) => document.getElementById(name);

let escalation = null;
let pendingSince = null; // server-clock ms when the current attempt started
let late = false;
let tickTimer = null;
let pollTimer = null;
let notesCache = null;

const AUDIENCE_TITLES = {
  ticket_notes: "Ticket notes",
  client_update: "Client update",
  email_draft: "Email draft",
};

function mine() {
  return Boolean(escalation.claim && escalation.claim.member_id === viewer.id);
}

// Someone else has it: this screen shows, it does not act.
function readOnly() {
  return Boolean(escalation.claim) && !mine();
}

function timeOf(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

function paragraphs(node, text) {
  clear(node);
  for (const part of String(text || "").split(/\n\s*\n/)) {
    if (part.trim()) node.append(el("p", { text: part.trim() }));
  }
}

// --- loading and the pending placeholder ------------------------------------------------------

// Live events come several a second while the model writes: one read at a time, and one more
// if anything arrived during it.
let loading = null;
let reloadAgain = false;
function reload() {
  if (loading) {
    reloadAgain = true;
    return;
  }
  loading = load().finally(() => {
    loading = null;
    if (reloadAgain) {
      reloadAgain = false;
      reload();
    }
  });
}

async function load() {
  try {
    const view = await api(`/api/v1/escalations/${id}`);
    render(view);
  } catch (error) {
    $("handoff-error").textContent = `Could not load this escalation: ${error.message}`;
    show($("handoff-error"), true);
  } finally {
    root.setAttribute("aria-busy", "false");
  }
}

function stopTimers() {
  clearInterval(tickTimer);
  clearTimeout(pollTimer);
  tickTimer = pollTimer = null;
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(reload, late ? LATE_POLL_MS : POLL_MS);
}

function tick() {
  const elapsed = Math.max(0, Math.floor((serverNow() - pendingSince) / 1000));
  $("pending-elapsed").textContent = String(elapsed);
  $("writing-elapsed").textContent = String(elapsed);
  if (!late && elapsed > deadlineSeconds + LATE_MARGIN_SECONDS) {
    // The placeholder never outlives the deadline: ask the server and show what it says.
    late = true;
    clearInterval(tickTimer);
    tickTimer = null;
    load();
  }
}

function trackPending(handoff) {
  const started = Date.parse(handoff.started_at || escalation.received_at);
  if (pendingSince === null || (!Number.isNaN(started) && started > pendingSince)) {
    pendingSince = Number.isNaN(started) ? serverNow() : started;
  }
}

function renderPending(handoff) {
  trackPending(handoff);
  show($("fields"), false);
  if (!late && serverNow() - pendingSince > (deadlineSeconds + LATE_MARGIN_SECONDS) * 1000) {
    late = true;
  }
  if (late) {
    show($("pending"), false);
    const box = $("late");
    clear(box);
    box.append(
      el("h2", { text: "The handoff is late" }),
      el("p", {
        text: `The server still has no handoff, well past the ${deadlineSeconds} s the AI is given. ` +
          "Its worker may be down; tell your Baton admin. This page keeps checking, and the ticket " +
          "itself is in the PSA.",
      }),
    );
    show(box, true);
  } else {
    show($("late"), false);
    show($("pending"), true);
    if (!tickTimer) tickTimer = setInterval(tick, 1000);
    tick();
  }
  schedulePoll();
}

// The model is writing: the fields it has finished show at once, the others say they are coming.
function renderWriting(handoff) {
  trackPending(handoff);
  show($("pending"), false);
  show($("late"), false);
  show($("writing"), true);
  if (!tickTimer) tickTimer = setInterval(tick, 1000);
  tick();
  renderFields(handoff, { writing: true });
  schedulePoll();
}

// --- the header and the claim -----------------------------------------------------------------

function renderHead() {
  $("ticket-title").textContent = ticketLabel(escalation);
  document.title = `${ticketLabel(escalation)} · Baton`;
  const meta = $("ticket-meta");
  clear(meta);
  meta.append(
    el("span", { text: `Escalated by ${escalation.escalated_by || "someone"}` }),
    el("span", { text: `${formatAge(Date.parse(escalation.received_at))} ago` }),
    stateBadge(escalation.handoff),
  );
  if (escalation.ticket.url && /^https?:\/\//.test(escalation.ticket.url)) {
    meta.append(el("a", {
      text: "Open in PSA",
      attrs: { href: escalation.ticket.url, target: "_blank", rel: "noopener noreferrer" },
    }));
  }
  const reason = $("ticket-reason");
  reason.textContent = escalation.reason || "";
  show(reason, Boolean(escalation.reason));
}

function renderClaim() {
  const bar = $("claim-bar");
  clear(bar);
  bar.className = "claim-bar";
  if (mine()) {
    bar.append(el("span", { text: `You picked this up at ${timeOf(escalation.claim.claimed_at)}.` }));
  } else if (escalation.claim) {
    bar.classList.add("claim-other");
    bar.append(el("span", {
      text: `Picked up by ${escalation.claim.name} at ${timeOf(escalation.claim.claimed_at)}. ` +
        "You are viewing it read-only.",
    }));
  } else if (viewer.senior) {
    const pick = el("button", { class: "btn btn-primary", text: "Pick up", attrs: { type: "button", id: "pick-up" } });
    pick.addEventListener("click", () => pickUp(pick));
    bar.append(el("span", { text: "Nobody has picked this up yet." }), pick);
  } else {
    bar.append(el("span", { text: "Waiting for a senior to pick this up." }));
  }
  show(bar, true);
  root.classList.toggle("read-only", readOnly());
}

async function pickUp(button) {
  button.disabled = true;
  try {
    render(await api(`/api/v1/escalations/${id}/claim`, { method: "POST" }));
    toast("Picked up: it is yours.");
  } catch (error) {
    if (error.status === 409) {
      toast(`Already picked up by ${error.body.claimed_by || "someone else"}`, "warn", 10);
      load();
      return;
    }
    toast(`Could not pick it up: ${error.message}`, "error");
    button.disabled = false;
  }
}

// --- the fields -----------------------------------------------------------------------------

function recordAction(kind, detail) {
  if (readOnly()) return Promise.resolve(null);
  return api(`/api/v1/escalations/${id}/actions`, { method: "POST", body: { kind, detail } })
    .catch((error) => toast(`Not recorded: ${error.message}`, "error"));
}

function empty(value) {
  return Array.isArray(value) ? value.length === 0 : !value;
}

// A field's card says whether it is written, still coming, or what an unfinished AI run left.
function mark(section, state) {
  section.dataset.state = state;
  const heading = section.querySelector("h2");
  const tag = heading.querySelector(".tag-unfinished");
  if (tag) tag.remove();
  if (state === "unfinished") heading.append(" ", el("span", { class: "badge tag-unfinished", text: "unfinished" }));
}

function renderStale(handoff, writing) {
  const count = writing ? 0 : handoff.new_notes || 0;
  show($("stale"), count > 0);
  if (!count) return;
  $("stale-count").textContent = `${count} new ${count === 1 ? "note" : "notes"} since this handoff`;
  const mayRegenerate = viewer.senior && !readOnly();
  $("stale-hint").textContent = mayRegenerate
    ? "Regenerate it to include them (one new AI call)."
    : "A senior can regenerate it to include them.";
  show($("regenerate-stale"), mayRegenerate);
}

function renderTried(items) {
  const list = $("tried");
  clear(list);
  for (const item of items || []) {
    list.append(el("li", {}, [
      el("span", { class: "tried-action", text: item.action }),
      item.result ? el("span", { class: "tried-result", text: item.result }) : null,
    ]));
  }
}

function renderFields(handoff, { writing = false } = {}) {
  if (!writing) {
    stopTimers();
    show($("writing"), false);
  }
  show($("pending"), false);
  show($("late"), false);
  const fallback = handoff.state === "fallback";
  // After an AI run that stopped partway, what it had written stays on screen, marked.
  const unfinished = (fallback && handoff.unfinished) || {};
  const shown = { ...handoff, ...unfinished };
  show($("fallback-note"), fallback);
  show($("unfinished-note"), Object.keys(unfinished).length > 0);
  $("fallback-reason").textContent = fallback && handoff.failure_reason ? `(Reason: ${handoff.failure_reason}.)` : "";
  show($("regenerate"), fallback && viewer.senior && !readOnly());
  renderStale(handoff, writing);
  for (const section of root.querySelectorAll("[data-field]")) {
    const name = section.dataset.field;
    mark(section, name in unfinished ? "unfinished" : writing && empty(shown[name]) ? "waiting" : "written");
  }

  renderTried(shown.tried);
  const questions = $("open-questions");
  clear(questions);
  for (const question of shown.open_questions || []) questions.append(el("li", { text: question }));
  // Handoffs written before these two fields existed have neither: their cards stay hidden.
  show(root.querySelector('[data-field="tried"]'), writing || !empty(shown.tried));
  show(root.querySelector('[data-field="open_questions"]'), writing || !empty(shown.open_questions));

  const confidence = $("confidence");
  confidence.textContent = shown.confidence ? `${shown.confidence} confidence` : "";
  confidence.className = `badge conf-${shown.confidence || "none"}`;
  $("likely-cause").textContent = shown.likely_cause || (writing ? "" : "Not known.");

  const facts = $("what-we-know");
  clear(facts);
  for (const fact of shown.what_we_know || []) facts.append(el("li", { text: fact }));
  if (!facts.firstChild && !writing) facts.append(el("li", { class: "muted", text: "Nothing extracted." }));

  const steps = $("steps");
  const used = new Set([...steps.querySelectorAll(".chip.used")].map((chip) => chip.dataset.step));
  clear(steps);
  for (const step of shown.suggested_steps || []) {
    const chip = el("button", {
      class: used.has(step) ? "chip used" : "chip",
      text: step,
      attrs: { type: "button", "data-step": step, "aria-label": `Copy step: ${step}` },
    });
    chip.addEventListener("click", () => useStep(chip, step));
    steps.append(el("li", {}, [chip]));
  }
  show($("steps-hint"), steps.childElementCount > 0);

  paragraphs($("summary"), shown.summary_prose);
  const removed = escalation.redactions ? escalation.redactions.summary : "";
  $("redaction-note").textContent = removed;
  show($("redaction-note"), Boolean(removed));
  show($("conclude"), !writing); // the variants are made from the finished handoff only
  show($("fields"), true);
  if (!writing) prefetchNotes();
}

async function useStep(chip, step) {
  const copied = await copyText(step);
  chip.classList.add("used");
  toast(copied ? "Step copied." : "Could not copy; select the text instead.", copied ? "info" : "error", 3);
  recordAction("step_used", step);
}

// --- seen before and what fixed it ---------------------------------------------------------

function dateOf(iso) {
  return iso ? new Date(iso).toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" }) : "";
}

function psaLink(url) {
  return url && /^https?:\/\//.test(url)
    ? el("a", { text: "Open in PSA", attrs: { href: url, target: "_blank", rel: "noopener noreferrer" } })
    : null;
}

// Found by a search, not by the AI: shown on a fallback too. The model's word on which is
// likely the same problem is added where it gave one.
function renderSeenBefore() {
  const list = $("seen-before");
  clear(list);
  const why = new Map((escalation.handoff.seen_before || []).map((c) => [String(c.ticket).replace(/^#/, "").trim(), c.why]));
  for (const earlier of escalation.related || []) {
    const number = earlier.ticket_number || earlier.ticket_id;
    const fix = earlier.resolution
      ? el("p", { class: "seen-fix", text: earlier.resolution })
      : el("p", { class: "seen-fix muted", text: "What fixed it was not recorded." });
    const who = [earlier.resolved_by, dateOf(earlier.resolved_at)].filter(Boolean).join(", ");
    list.append(el("li", { class: "seen-item" }, [
      el("p", { class: "seen-head" }, [
        el("strong", { text: `#${number}` }),
        el("span", { text: ` ${earlier.title || "Untitled"}` }),
      ]),
      el("p", { class: "hint", text: `Escalated ${dateOf(earlier.received_at)}${earlier.company ? ` · ${earlier.company}` : ""}${who ? ` · resolved by ${who}` : ""}` }),
      why.get(String(number)) ? el("p", { class: "seen-why", text: `Likely the same: ${why.get(String(number))}` }) : null,
      fix,
      psaLink(earlier.url),
    ]));
  }
  show($("seen-before-card"), list.childElementCount > 0);
}

function renderFixed() {
  const resolution = escalation.resolution;
  $("fixed-text").textContent = resolution ? resolution.text : "Not recorded yet: Baton reads it from the PSA when the ticket is closed.";
  $("fixed-text").classList.toggle("muted", !resolution);
  const by = resolution ? [resolution.resolved_by, dateOf(resolution.resolved_at)].filter(Boolean).join(", ") : "";
  $("fixed-meta").textContent = resolution ? `${resolution.source === "panel" ? "Written in Baton" : "From the PSA"}${by ? ` · ${by}` : ""}` : "";
  const form = $("fixed-form");
  const mayWrite = viewer.senior && !readOnly();
  if (mayWrite && document.activeElement !== $("fixed-input")) {
    $("fixed-input").value = resolution ? resolution.text : "";
  }
  show(form, mayWrite);
}

async function saveFixed(event) {
  event.preventDefault();
  const button = $("fixed-save");
  button.disabled = true;
  try {
    const view = await api(`/api/v1/escalations/${id}/resolution`, { method: "PUT", body: { text: $("fixed-input").value } });
    $("fixed-input").blur();
    render(view);
    toast("Saved: the next escalation like this one shows it.");
  } catch (error) {
    toast(`Not saved: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function render(view) {
  const before = escalation ? escalation.handoff.state : null;
  escalation = view;
  renderHead();
  renderClaim();
  renderSeenBefore();
  renderFixed();
  const handoff = escalation.handoff;
  if (handoff.state === "pending" && handoff.writing) {
    renderWriting(handoff);
  } else if (handoff.state === "pending") {
    renderPending(handoff);
  } else {
    late = false;
    pendingSince = null;
    renderFields(handoff);
    if (before === "pending") {
      toast(handoff.state === "ready" ? "The handoff is ready." : "The handoff is here, built without the AI.");
    }
  }
}

async function regenerate(button) {
  button.disabled = true;
  try {
    const view = await api(`/api/v1/escalations/${id}/regenerate`, { method: "POST" });
    late = false;
    pendingSince = serverNow();
    notesCache = null;
    render(view);
  } catch (error) {
    toast(`Could not regenerate: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

for (const button of [$("regenerate"), $("regenerate-stale")]) {
  button.addEventListener("click", () => regenerate(button));
}

// --- Conclude: ticket notes, client update, email draft --------------------------------------

function variantUrl(audience) {
  return `/api/v1/escalations/${id}/variants/${audience}`;
}

function variantProblem(audience, error) {
  if (error.status === 404 && !(error.body.error && error.body.error.code === "unknown_escalation")) {
    return `${AUDIENCE_TITLES[audience]} is not available on this Baton yet.`;
  }
  return `${AUDIENCE_TITLES[audience]}: ${error.message}`;
}

function prefetchNotes() {
  if (notesCache) return;
  api(variantUrl("ticket_notes")).then((data) => { notesCache = data; }).catch(() => {});
}

async function copyNotes(button) {
  button.disabled = true;
  try {
    const notes = notesCache || (notesCache = await api(variantUrl("ticket_notes")));
    const copied = await copyText(notes.text);
    toast(copied ? "Ticket notes copied." : "Could not copy the ticket notes.", copied ? "info" : "error");
    if (copied) recordAction("variant_copied", "ticket_notes");
  } catch (error) {
    toast(variantProblem("ticket_notes", error), "error");
  } finally {
    button.disabled = false;
  }
}

let shown = null; // the audience in the variant box

async function openVariant(audience, button) {
  shown = audience;
  const box = $("variant");
  $("variant-title").textContent = AUDIENCE_TITLES[audience];
  for (const name of ["variant-error", "variant-subject", "variant-text", "variant-actions"]) show($(name), false);
  $("variant-busy-text").textContent = `Writing the ${AUDIENCE_TITLES[audience].toLowerCase()}… the first time takes a few seconds.`;
  show($("variant-busy"), true);
  box.setAttribute("aria-busy", "true");
  show(box, true);
  button.disabled = true;
  try {
    const data = await api(variantUrl(audience));
    if (shown !== audience) return;
    if (data.subject) {
      $("variant-subject").textContent = `Subject: ${data.subject}`;
      show($("variant-subject"), true);
    }
    paragraphs($("variant-text"), data.text);
    $("variant-text").dataset.text = data.subject ? `Subject: ${data.subject}\n\n${data.text}` : data.text;
    show($("variant-text"), true);
    const post = $("variant-post");
    resetPost(post);
    show(post, audience === "client_update" && viewer.senior && !readOnly());
    show($("variant-actions"), true);
  } catch (error) {
    if (shown !== audience) return;
    $("variant-error").textContent = variantProblem(audience, error);
    show($("variant-error"), true);
  } finally {
    button.disabled = false;
    show($("variant-busy"), false);
    box.setAttribute("aria-busy", "false");
  }
}

function resetPost(post) {
  post.disabled = false;
  post.textContent = "Post to PSA";
  post.classList.remove("btn-confirm");
  delete post.dataset.armed;
}

$("variant-copy").addEventListener("click", async () => {
  const copied = await copyText($("variant-text").dataset.text || "");
  toast(copied ? `${AUDIENCE_TITLES[shown]} copied.` : "Could not copy.", copied ? "info" : "error");
  if (copied) recordAction("variant_copied", shown);
});

// A client-visible note cannot be taken back: the first click arms, the second posts.
$("variant-post").addEventListener("click", async () => {
  const post = $("variant-post");
  if (!post.dataset.armed) {
    post.dataset.armed = "1";
    post.textContent = "Confirm: the client will see it";
    post.classList.add("btn-confirm");
    setTimeout(() => { if (post.dataset.armed && !post.disabled) resetPost(post); }, 8000);
    return;
  }
  post.disabled = true;
  post.textContent = "Posting…";
  try {
    await api(`${variantUrl(shown)}/publish`, { method: "POST" });
    post.textContent = "Posted";
    toast("Posted to the ticket, visible to the client.");
  } catch (error) {
    if (error.status === 409) {
      post.textContent = "Already posted";
      toast(error.message, "warn");
      return;
    }
    resetPost(post);
    toast(`Not posted: ${error.message}`, "error");
  }
});

for (const button of document.querySelectorAll("[data-audience]")) {
  button.addEventListener("click", () => {
    const audience = button.dataset.audience;
    if (audience === "ticket_notes") copyNotes(button);
    else openVariant(audience, button);
  });
}

// --- live updates -------------------------------------------------------------------------------

openStream({
  onOpen: reload, // (re)connected: re-read, so nothing missed while away stays stale
  onEvent(kind, data) {
    if (Number(data.escalation_id) === id) reload();
  },
});

showPendingToast();
$("fixed-form").addEventListener("submit", saveFixed);
load().then(() => api(`/api/v1/escalations/${id}/read`, { method: "POST" }).catch(() => {}));
