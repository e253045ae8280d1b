"""Webhooks in the sandbox: GET/POST /api/Webhook, and the listener that fires every active
webhook when a ticket's status changes, as a small-object "ticket status changed" delivery with
the webhook's Basic credentials. (A sandbox webhook hears that event whichever events it lists.)
"""

from __future__ import annotations

import itertools
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify

from adapters.halopsa.install import BASIC_AUTHENTICATION, WEBHOOK_NAME
from adapters.halopsa.sandbox.http import HaloError, records
from adapters.halopsa.sandbox.render import STATUS_IDS, agent_id
from adapters.halopsa.sandbox.state import HaloState, halo_state
from adapters.halopsa.webhook import WEBHOOK_USER, basic_credentials
from adapters.sandbox.callbacks import CallbackSender
from adapters.sandbox.store import SandboxStore

WEBHOOK_FIELDS = {"id", "name", "url", "active", "content_type", "authentication_type",
                  "basic_username", "basic_password", "events", "payload_type", "method",
                  "disabled"}  # fmt: skip
_NOTIFICATIONS = itertools.count(41)


def register_webhook(store: SandboxStore, callback_url: str) -> str | None:
    """What `install_webhook` creates, registered directly; answers its Basic password."""
    password = secrets.token_urlsafe(30)
    webhook: dict[str, Any] = {
        "id": str(uuid.uuid4()), "name": WEBHOOK_NAME, "url": callback_url, "active": True,
        "authentication_type": BASIC_AUTHENTICATION, "basic_username": WEBHOOK_USER,
        "basic_password": password, "events": [],
    }  # fmt: skip
    state = halo_state(store)
    with state.lock:
        state.webhooks[webhook["id"]] = webhook
    return password


def shown(webhook: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the API lists it: never its password."""
    return {k: v for k, v in webhook.items() if k != "basic_password"}


def serve_webhooks(api: Blueprint, store: SandboxStore, state: HaloState) -> None:
    """The Webhook endpoints on `api`, and the store listener that fires webhooks."""
    sender = CallbackSender(store)

    def allowed() -> None:
        if not state.webhooks_api:
            raise HaloError(403, "You do not have permission to access webhooks.")

    @api.get("/Webhook")
    def webhooks() -> Response:
        allowed()
        with state.lock:
            return jsonify([shown(w) for w in state.webhooks.values()])

    @api.post("/Webhook")
    def save_webhooks() -> Response:
        allowed()
        saved = []
        for record in records():
            if unknown := sorted(set(record) - WEBHOOK_FIELDS):
                raise HaloError(400, f"{unknown[0]} is not a webhook field in the sandbox.")
            url = record.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise HaloError(400, "url must be an http(s) URL.", url=["Invalid URL"])
            with state.lock:
                current = state.webhooks.get(str(record.get("id") or ""))
                if record.get("id") and current is None:
                    raise HaloError(404, f"No webhook {record['id']}.")
                webhook = {**(current or {"id": str(uuid.uuid4()), "events": []}), **record}
                webhook["id"] = str(webhook["id"])
                state.webhooks[webhook["id"]] = webhook
                saved.append(shown(webhook))
        return jsonify(saved)  # an array back, whatever was sent

    def fire(kind: str, ticket_id: int, actor: str) -> None:
        if kind != "status":
            return  # an action is another event: the webhook listens for status changes
        t = store.ticket(ticket_id)
        with state.lock:
            before = state.statuses.get(ticket_id)
            state.statuses[ticket_id] = t.status
            hooks = [dict(w) for w in state.webhooks.values() if w.get("active")]
        if before == t.status or not hooks:
            return
        for hook in hooks:
            body = json.dumps({
                "id": str(uuid.uuid4()), "webhook_id": hook["id"],
                "notification_id": next(_NOTIFICATIONS), "escmsg_id": str(uuid.uuid4()),
                "event": "ticket status changed",
                "message": f"The status has been changed for Ticket ID: {ticket_id:07d}.",
                "object_id": ticket_id, "agent_id": agent_id(store, actor) or 0,
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "ticket": {"id": ticket_id, "summary": t.summary,
                           "status_id": STATUS_IDS[t.status], "agent_id": 0,
                           "customfields": [], "hasbeenclosed": t.status == "Resolved"},
            }).encode()  # fmt: skip
            headers = {"Content-Type": "application/json"}
            if hook.get("authentication_type") == BASIC_AUTHENTICATION:
                user, password = hook.get("basic_username") or "", hook.get("basic_password") or ""
                headers["Authorization"] = basic_credentials(user, password)
            sender.send(hook["url"], body, headers)

    store.set_listener("halopsa", fire)
