"""Ticket webhooks in the sandbox: the TicketWebhooks endpoints, and the listener that fires
them when a ticket's status changes, serialised and signed the way Autotask does it."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify

from adapters.autotask.install import WEBHOOK_NAME
from adapters.autotask.sandbox.errors import ATError, body_object
from adapters.autotask.sandbox.render import (
    STATUS_FIELD_ID,
    WEBHOOK_FIELDS,
    member_id,
    ticket_json,
)
from adapters.autotask.sandbox.serialise import autotask_json, hook_signature
from adapters.autotask.sandbox.state import AutotaskState, autotask_state
from adapters.sandbox.callbacks import CallbackSender
from adapters.sandbox.store import SandboxStore

WEBHOOK_PATCHABLE = {
    "name", "isActive", "webhookUrl", "deactivationUrl", "secretKey", "notificationEmailAddress",
    "isSubscribedToCreateEvents", "isSubscribedToUpdateEvents", "isSubscribedToDeleteEvents",
    "sendThresholdExceededNotification",
}  # fmt: skip


def register_webhook(store: SandboxStore, callback_url: str) -> str | None:
    """What `install_webhook` creates, registered directly: Status subscribed, the API user's
    own changes excluded. Answers the secret deliveries are signed with."""
    state = autotask_state(store)
    secret = secrets.token_urlsafe(30)
    api_member = store.member(store.api_member)
    deactivation_url = callback_url + ("&" if "?" in callback_url else "?") + "event=deactivated"
    with state.lock:
        webhook_id = next(state.ids)
        state.webhooks[webhook_id] = {
            "id": webhook_id, "name": WEBHOOK_NAME, "isActive": True, "isReady": True,
            "webhookUrl": callback_url, "deactivationUrl": deactivation_url,
            "secretKey": secret, "isSubscribedToCreateEvents": False,
            "isSubscribedToUpdateEvents": True, "isSubscribedToDeleteEvents": False,
            "notificationEmailAddress": None, "sendThresholdExceededNotification": True,
            "webhookGUID": str(uuid.uuid4()), "ownerResourceID": api_member.id if api_member else 0,
        }  # fmt: skip
        field_id = next(state.ids)
        state.webhook_fields[field_id] = {
            "id": field_id, "webhookID": webhook_id, "fieldID": STATUS_FIELD_ID,
            "isSubscribedField": True, "isDisplayAlwaysField": False,
        }  # fmt: skip
        if api_member is not None:
            row_id = next(state.ids)
            state.excluded[row_id] = {"id": row_id, "webhookID": webhook_id,
                                      "resourceID": api_member.id}  # fmt: skip
    return secret


def serve_ticket_webhooks(api: Blueprint, store: SandboxStore, state: AutotaskState) -> None:
    """The TicketWebhooks endpoints on `api`, and the store listener that fires webhooks."""
    sender = CallbackSender(store)

    def send_signed(url: str, body: bytes, secret_key: str) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Hook-Signature": hook_signature(body, secret_key)}  # fmt: skip
        sender.send(url, body, headers)

    def check_url(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ATError(500, f"{what} must be an http(s) URL.")
        if len(value) > 500:
            raise ATError(500, f"{what} is longer than 500 characters.")
        return value

    def webhook(webhook_id: int) -> dict[str, Any]:
        if webhook_id not in state.webhooks:
            raise ATError(500, "No matching records found.")
        return state.webhooks[webhook_id]

    @api.post("/TicketWebhooks")
    def add_webhook() -> Response:
        body = body_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 50:
            raise ATError(500, "Name is required and at most 50 characters.")
        secret_key = body.get("secretkey")
        if not isinstance(secret_key, str) or not secret_key or len(secret_key) > 64:
            raise ATError(500, "SecretKey is required and at most 64 characters.")
        record = {
            "name": name,
            "isActive": bool(body.get("isactive")),
            "isReady": False,
            "webhookUrl": check_url(body.get("webhookurl"), "WebhookUrl"),
            "deactivationUrl": check_url(body.get("deactivationurl"), "DeactivationUrl"),
            "secretKey": secret_key,
            "isSubscribedToCreateEvents": bool(body.get("issubscribedtocreateevents")),
            "isSubscribedToUpdateEvents": bool(body.get("issubscribedtoupdateevents")),
            "isSubscribedToDeleteEvents": bool(body.get("issubscribedtodeleteevents")),
            "notificationEmailAddress": body.get("notificationemailaddress"),
            "sendThresholdExceededNotification": bool(
                body.get("sendthresholdexceedednotification")
            ),
            "webhookGUID": str(uuid.uuid4()),
            "ownerResourceID": g.member.id,
        }
        with state.lock:
            webhook_id = next(state.ids)
            state.webhooks[webhook_id] = {"id": webhook_id, **record}
        return jsonify(itemId=webhook_id)

    @api.patch("/TicketWebhooks")
    def patch_webhook() -> Response:
        body = body_object()
        webhook_id = body.pop("id", None)
        known = {k.lower(): k for k in WEBHOOK_PATCHABLE}
        if fixed := sorted(set(body) - set(known)):
            raise ATError(500, f"{fixed[0]} cannot be updated.")
        for url_field in ("webhookurl", "deactivationurl"):
            if url_field in body:
                check_url(body[url_field], known[url_field])
        if "secretkey" in body and not (
            isinstance(body["secretkey"], str) and 0 < len(body["secretkey"]) <= 64
        ):
            raise ATError(500, "SecretKey is required and at most 64 characters.")
        with state.lock:
            current = webhook(webhook_id if isinstance(webhook_id, int) else -1)
            was_active = current["isActive"]
            current.update({known[k]: v for k, v in body.items()})
            turned_off = was_active and not current["isActive"]
            snapshot = dict(current)
        if turned_off:
            deactivated(snapshot)
        return jsonify(itemId=webhook_id)

    @api.delete("/TicketWebhooks/<int:webhook_id>")
    def delete_webhook(webhook_id: int) -> Response:
        with state.lock:
            snapshot = dict(webhook(webhook_id))
            del state.webhooks[webhook_id]
            for table in (state.webhook_fields, state.excluded):
                for row_id in [i for i, r in table.items() if r["webhookID"] == webhook_id]:
                    del table[row_id]
        if snapshot["isActive"]:
            deactivated(snapshot)
        return jsonify(itemId=webhook_id)

    @api.post("/TicketWebhooks/<int:webhook_id>/Fields")
    def add_webhook_field(webhook_id: int) -> Response:
        body = body_object()
        field_id = body.get("fieldid")
        if field_id not in WEBHOOK_FIELDS:
            raise ATError(500, f"Value {field_id!r} is not valid for field fieldID.")
        with state.lock:
            hook = webhook(webhook_id)
            if any(f["webhookID"] == webhook_id and f["fieldID"] == field_id
                   for f in state.webhook_fields.values()):  # fmt: skip
                raise ATError(500, "This field is already added to the webhook.")
            row_id = next(state.ids)
            subscribed = bool(body.get("issubscribedfield"))
            state.webhook_fields[row_id] = {
                "id": row_id, "webhookID": webhook_id, "fieldID": field_id,
                "isSubscribedField": subscribed,
                "isDisplayAlwaysField": bool(body.get("isdisplayalwaysfield")),
            }  # fmt: skip
            hook["isReady"] = hook["isReady"] or subscribed
        return jsonify(itemId=row_id)

    @api.post("/TicketWebhooks/<int:webhook_id>/ExcludedResources")
    def add_excluded_resource(webhook_id: int) -> Response:
        body = body_object()
        resource_id = body.get("resourceid")
        if not isinstance(resource_id, int) or store.member_by_id(resource_id) is None:
            raise ATError(500, f"Value {resource_id!r} is not valid for field resourceID.")
        with state.lock:
            webhook(webhook_id)
            if any(r["webhookID"] == webhook_id and r["resourceID"] == resource_id
                   for r in state.excluded.values()):  # fmt: skip
                raise ATError(500, "This resource is already excluded from the webhook.")
            row_id = next(state.ids)
            state.excluded[row_id] = {"id": row_id, "webhookID": webhook_id,
                                      "resourceID": resource_id}  # fmt: skip
        return jsonify(itemId=row_id)

    def event_time() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def next_sequence(webhook_id: int) -> int:
        with state.lock:
            state.sequences[webhook_id] = state.sequences.get(webhook_id, 0) + 1
            return state.sequences[webhook_id]

    def deactivated(hook: dict[str, Any]) -> None:
        """Autotask calls the DeactivationUrl when a webhook is turned off or deleted."""
        payload = {"Action": "Deactivated", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
                   "Id": hook["id"], "EventTime": event_time(),
                   "SequenceNumber": next_sequence(hook["id"])}  # fmt: skip
        body = autotask_json(payload).encode("ascii")
        send_signed(hook["deactivationUrl"], body, hook["secretKey"])

    def fire(kind: str, ticket_id: int, actor: str) -> None:
        if kind != "status":
            return  # notes are another entity: a TicketWebhook does not hear about them
        t = store.ticket(ticket_id)
        with state.lock:
            before = state.statuses.get(ticket_id)
            state.statuses[ticket_id] = t.status
            if before == t.status:
                return  # Autotask fires for a change of a subscribed field, not for any save
            hooks = [dict(w) for _, w in sorted(state.webhooks.items()) if w["isActive"]]
            if not hooks:
                return
            fields = [dict(f) for f in state.webhook_fields.values()]
            excluded = [dict(r) for r in state.excluded.values()]
        person = member_id(store, actor)
        rendered = ticket_json(store, t)
        sent: set[str] = set()
        for hook in hooks:
            mine = [f for f in fields if f["webhookID"] == hook["id"]]
            subscribed = {f["fieldID"] for f in mine if f["isSubscribedField"]}
            if not (hook["isActive"] and hook["isSubscribedToUpdateEvents"]):
                continue
            if STATUS_FIELD_ID not in subscribed:
                continue
            if person is not None and any(
                r["webhookID"] == hook["id"] and r["resourceID"] == person for r in excluded
            ):
                continue  # the change was made by an excluded resource
            if hook["webhookUrl"] in sent:
                continue  # Autotask sends one callout per entity and URL
            sent.add(hook["webhookUrl"])
            shown = {STATUS_FIELD_ID} | {f["fieldID"] for f in mine if f["isDisplayAlwaysField"]}
            payload_fields = {
                WEBHOOK_FIELDS[fid][1]: rendered[WEBHOOK_FIELDS[fid][2]] for fid in sorted(shown)
            }
            payload = {"Action": "Update", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
                       "Id": ticket_id, "Fields": payload_fields, "EventTime": event_time(),
                       "SequenceNumber": next_sequence(hook["id"]), "PersonID": person}  # fmt: skip
            body = autotask_json(payload).encode("ascii")
            send_signed(hook["webhookUrl"], body, hook["secretKey"])

    store.set_listener("autotask", fire)
