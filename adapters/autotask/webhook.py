"""Autotask webhooks: X-Hook-Signature over the raw body, and parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from adapters.autotask.client import COMPLETE_STATUS, AutotaskClient
from adapters.base import Ignored, MalformedWebhook, TicketEvent, WebhookRejected, WebhookRequest
from adapters.values import header, int_or_none, lower_keys

# Autotask escapes these (and everything non-ASCII) as \uXXXX inside JSON strings.
_AUTOTASK_ESCAPED = {"&", "<", ">", "'", "+", "`"}


def autotask_escape(body: str) -> str:
    """Escape JSON string contents the way Autotask serialises webhooks: & < > ' + ` " and
    every non-ASCII character as \\uXXXX. Only used as a fallback when a proxy un-escaped them."""
    out: list[str] = []
    in_string = escaped = False
    for ch in body:
        if in_string and escaped:
            escaped = False
            if ch == '"':  # \" -> \u0022: replace the backslash already written
                out[-1] = "\\u0022"
                continue
            out.append(ch)
        elif in_string and ch == "\\":
            escaped = True
            out.append(ch)
        elif ch == '"':
            in_string = not in_string
            out.append(ch)
        elif in_string and (ch in _AUTOTASK_ESCAPED or ord(ch) > 127):
            units = ch.encode("utf-16-be")
            out += [f"\\u{units[i] << 8 | units[i + 1]:04X}" for i in range(0, len(units), 2)]
        else:
            out.append(ch)
    return "".join(out)


def hook_signature(body: bytes, secret: str) -> str:
    """X-Hook-Signature's value without "sha1=": base64(HMAC-SHA1(secret, body))."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AutotaskWebhooks(AutotaskClient):
    @staticmethod
    def _payload(request: WebhookRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedWebhook("autotask webhook body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedWebhook("autotask webhook body is not a JSON object")
        return lower_keys(body)

    def verify_webhook(self, request: WebhookRequest) -> None:
        """X-Hook-Signature: sha1=base64(HMAC-SHA1(secret, raw body)), over the RAW bytes.

        Every delivery must be signed, "Deactivated" notices included: an unsigned notice is
        refused like any other forgery, so it can never change security state. A signed one
        reaches parse_webhook, which only asks for the webhook to be re-checked.
        """
        if not self.webhook_secret:
            raise WebhookRejected("no webhook secret configured: install the webhook first")
        sent = header(request.headers, "x-hook-signature")
        if not sent or not sent.strip():
            raise WebhookRejected("missing X-Hook-Signature")
        signature = sent.strip()
        if signature[:5].lower() == "sha1=":
            signature = signature[5:].strip()
        given = signature.encode("utf-8", "replace")
        if hmac.compare_digest(hook_signature(request.body, self.webhook_secret).encode(), given):
            return
        # Autotask escapes & < > ' + ` " and non-ASCII as \uXXXX; if something on the way
        # un-escaped them, the escaped text is what was signed. Still an HMAC with our key.
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        escaped = autotask_escape(text).encode("utf-8") if text else request.body
        if escaped != request.body and hmac.compare_digest(
            hook_signature(escaped, self.webhook_secret).encode(), given
        ):
            return
        raise WebhookRejected("signature mismatch")

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        p = self._payload(request)
        action = str(p.get("action") or "").strip()
        guid = str(p.get("guid") or "").strip()
        entity_id = int_or_none(p.get("id"))
        sequence = p.get("sequencenumber")
        sequence = str(sequence if sequence is not None else p.get("eventtime") or "")
        delivery_key = f"{guid}:{entity_id if entity_id is not None else ''}:{sequence}"
        query_event = lower_keys(dict(request.query)).get("event")
        if action.lower() == "deactivated" or str(query_event or "").lower() == "deactivated":
            return Ignored(
                "webhook deactivated by Autotask", delivery_key=delivery_key, recheck_webhook=True
            )
        if not guid:
            raise MalformedWebhook("autotask webhook has no Guid")
        if entity_id is None:
            shown = str(p.get("id"))[:20]
            raise MalformedWebhook(f"autotask webhook has no numeric Id ({shown!r})")
        entity_type = str(p.get("entitytype") or "")
        if entity_type.lower() != "ticket":
            return Ignored(
                f"not a ticket webhook (EntityType={entity_type[:40]})", delivery_key=delivery_key
            )
        if action.lower() == "delete":
            return Ignored("ticket deleted", delivery_key=delivery_key)
        if action.lower() not in ("create", "update"):
            return Ignored(f"action {action[:40]!r} is not a change", delivery_key=delivery_key)
        fields = lower_keys(p.get("fields"))
        status = fields.get("status")
        if status is None or isinstance(status, (dict, list, bool)) or not str(status).strip():
            return Ignored("status did not change", delivery_key=delivery_key)
        number = int_or_none(status)
        person = p.get("personid")
        return TicketEvent(
            ticket_id=str(entity_id),
            delivery_key=delivery_key,
            status=str(number) if number is not None else str(status).strip(),
            title=str(fields.get("title") or ""),
            actor=str(person) if person is not None else "",
            ticket_number=str(fields.get("ticketnumber") or ""),
            closed=number == COMPLETE_STATUS,
        )
