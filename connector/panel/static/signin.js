// Signed out. Inside a ConnectWise pod or tab, ask ConnectWise who this is (Hosted API
// postMessage) and let the server prove it; anywhere else, the page explains the sign-in link.
import { el } from "./common.js";

const box = document.getElementById("signed-out");
const status = document.getElementById("pod-status");
const tenant = box.dataset.tenant;
const trusted = (box.dataset.messageOrigins || "").split(" ").filter(Boolean);
const CONNECTWISE = [/^https:\/\/[a-z0-9-]+(\.[a-z0-9-]+)*\.myconnectwise\.net$/, /^https:\/\/[a-z0-9-]+(\.[a-z0-9-]+)*\.connectwisedev\.com$/];

function fromConnectWise(origin) {
  return trusted.includes(origin) || CONNECTWISE.some((pattern) => pattern.test(origin));
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
  post({ request: "getMemberAuthentication", ...extra });
  post({ hosted_request: "getMemberAuthentication", ...extra });
}

let signingIn = false;

async function signIn(data) {
  if (signingIn) return;
  signingIn = true;
  say("Signing you in through ConnectWise…");
  try {
    const response = await fetch("/api/v1/panel/connectwise-auth", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        tenant,
        memberid: data.memberid || data.memberId || "",
        memberHash: data.memberHash || "",
        memberContext: data.memberContext || "",
      }),
    });
    if (response.ok) {
      window.location.reload();
      return;
    }
    const body = await response.json().catch(() => null);
    const message = (body && body.error && body.error.message) || `sign-in failed (${response.status})`;
    say(`ConnectWise could not sign you in: ${message}`);
  } catch {
    say("ConnectWise could not sign you in: Baton did not answer.");
  }
  signingIn = false;
}

function onMessage(event) {
  if (event.source !== window.parent || !fromConnectWise(event.origin)) return;
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
  } else if (String(message.response || "").toLowerCase() === "getmemberauthentication" && message.data) {
    signIn(message.data);
  } else if (message.event && message._id) {
    post({ event: message.event, _id: message._id, result: "success" });
  }
}

if (window.parent !== window && tenant) {
  window.addEventListener("message", onMessage);
  say("Asking ConnectWise who you are…");
  post({ message: "ready" });
  ask(null);
  setTimeout(() => {
    if (!signingIn && status.textContent.startsWith("Asking")) {
      say("ConnectWise did not answer. Use the sign-in link your admin sent you.");
    }
  }, 8000);
} else if (window.parent !== window) {
  box.append(el("p", { class: "muted", text: "The pod's address must name your Baton tenant (?tenant=…) for automatic sign-in; ask your Baton admin." }));
}
