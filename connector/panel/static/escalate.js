// The technician's escalate form: the reason, Enter sends it (Shift+Enter is a new line).
import { api, clear, el } from "./common.js";

const form = document.getElementById("escalate-form");
const ticket = document.getElementById("ticket-id");
const reason = document.getElementById("reason");
const submit = document.getElementById("escalate-submit");
const result = document.getElementById("escalate-result");

function say(kind, text, link) {
  clear(result);
  result.className = `result result-${kind}`;
  result.append(el("p", { text }));
  if (link) result.append(el("p", {}, [el("a", { text: link.text, attrs: { href: link.href } })]));
}

reason.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const ticketId = ticket.value.trim();
  const text = reason.value.trim();
  if (!ticketId) {
    say("error", "Which ticket? Enter its number.");
    ticket.focus();
    return;
  }
  if (!text) {
    say("error", "Say what you need from a senior: what you tried and where you are stuck.");
    reason.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "Escalating…";
  try {
    const view = await api(`/api/v1/tickets/${encodeURIComponent(ticketId)}/escalate`, {
      method: "POST",
      body: { reason: text },
    });
    form.hidden = true;
    say(
      "ok",
      `Ticket #${view.ticket.number || ticketId} is escalated. The seniors have been told, and ` +
        "the handoff is being written from the ticket; you do not need to brief anyone.",
      { text: "See the escalation", href: `/panel/escalations/${view.id}` },
    );
  } catch (error) {
    const existing = error.body && error.body.escalation_id;
    say(
      "error",
      error.status === 409 ? `Not escalated: ${error.message}.` : `Not escalated: ${error.message}`,
      existing ? { text: "See the escalation", href: `/panel/escalations/${existing}` } : null,
    );
    submit.disabled = false;
    submit.textContent = "Escalate";
  }
});

(ticket.value ? reason : ticket).focus();
