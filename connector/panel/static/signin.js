// Signed out. When the tenant's PSA vouches for its members (the vendor's identity method, given
// by the page), take the member's id and proof from the parent frame (frame_message) or from the
// panel's own address (signed_url) and let the server check the proof; without one, the page
// explains the sign-in link.
import { el } from "./common.js";

const box = document.getElementById("signed-out");
const status = document.getElementById("frame-status");
const tenant = box.dataset.tenant;
const psa = box.dataset.psaName || "your PSA";
const identity = box.dataset.identity;
const question = box.dataset.identityRequest || "";
const memberFields = (box.dataset.memberFields || "").split(" ").filter(Boolean);
const trusted = (box.dataset.messageOrigins || "").split(" ").filter(Boolean);
const patterns = (box.dataset.originPatterns || "").split(" ").filter(Boolean).map((p) => new RegExp(p));

function fromPsa(origin) {
  return trusted.includes(origin) || patterns.some((pattern) => pattern.test(origin));
}

function say(text) {
  status.textContent = text;
  status.hidden = false;
}

function post(message) {
  // The requests carry nothing secret; only the reply is checked, by its origin.
  window.parent.postMessage(JSON.stringify(message), "*");
}

function ask(frameID) {
  const extra = frameID ? { frameID } : {};
  post({ request: question, ...extra });
  post({ hosted_request: question, ...extra });
}

let signingIn = false;

function signedIn() {
  if (identity !== "signed_url") {
    window.location.reload();
    return;
  }
  // The proof is a credential (and never expires): once used, it leaves the address.
  const url = new URL(window.location.href);
  for (const name of [...memberFields, box.dataset.proofField]) url.searchParams.delete(name);
  window.location.replace(url);
}

function fromAddress() {
  const data = Object.fromEntries(new URLSearchParams(window.location.search));
  return memberFields.some((name) => data[name]) && data[box.dataset.proofField] ? data : null;
}

async function signIn(data) {
  if (signingIn) return;
  signingIn = true;
  say(`Signing you in through ${psa}…`);
  try {
    const response = await fetch("/api/v1/panel/psa-sign-in", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        tenant,
        member_id: String(memberFields.map((name) => data[name]).find(Boolean) || ""),
        proof: String(data[box.dataset.proofField] || ""),
        context: String(data[box.dataset.contextField] || ""),
      }),
    });
    if (response.ok) {
      signedIn();
      return;
    }
    const body = await response.json().catch(() => null);
    const message = (body && body.error && body.error.message) || `sign-in failed (${response.status})`;
    say(`${psa} could not sign you in: ${message}`);
  } catch {
    say(`${psa} could not sign you in: Baton did not answer.`);
  }
  signingIn = false;
}

function onMessage(event) {
  if (event.source !== window.parent || !fromPsa(event.origin)) return;
  let message = event.data;
  if (typeof message === "string") {
    try {
      message = JSON.parse(message);
    } catch {
      return;
    }
  }
  if (!message || typeof message !== "object") return;
  if (message.MessageFrameID) {
    ask(message.MessageFrameID);
  } else if (String(message.response || "").toLowerCase() === question.toLowerCase() && message.data) {
    signIn(message.data);
  } else if (message.event && message._id) {
    post({ event: message.event, _id: message._id, result: "success" });
  }
}

const signed = tenant && identity === "signed_url" ? fromAddress() : null;
if (signed) {
  signIn(signed);
} else if (window.parent !== window && tenant && identity === "frame_message") {
  window.addEventListener("message", onMessage);
  say(`Asking ${psa} who you are…`);
  post({ message: "ready" });
  ask(null);
  setTimeout(() => {
    if (!signingIn && status.textContent.startsWith("Asking")) {
      say(`${psa} did not answer. Use the sign-in link your admin sent you.`);
    }
  }, 8000);
} else if (window.parent !== window && !tenant) {
  box.append(el("p", { class: "muted", text: "The panel's address must name your Baton tenant (?tenant=…) for automatic sign-in; ask your Baton admin." }));
}
