"""Halo webhooks: Baton's credential on every delivery, and parsing with the ticket re-read.

Halo's outbound webhooks are not signed; they authenticate with Basic auth (or a header). Baton
issues each tenant a random password (installed with the webhook, stored encrypted) and checks
it in constant time. Because the body is not signed, only the delivery id, the event and the
ticket it names are taken from it: the status comes from the ticket, read again through the API.
The status the payload reports goes along only as `reported_status`, which can keep a delivery
from counting as an escalation but never make one (a late "left the status" delivery, read
back after the ticket came back, must not swallow the escalation that follows it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from adapters.base import (
    AdapterError,
    Ignored,
    MalformedWebhook,
    NotFound,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from adapters.halopsa.client import CLOSED_STATUS
from adapters.halopsa.lookups import HaloLookups
from adapters.values import header, int_or_none, lower_keys

WEBHOOK_USER = "baton"
# For a webhook set to send its credential in a header (a header's name, not a secret).
SECRET_HEADER = "x-baton-secret"  # noqa: S105
# Halo documents no field names: a payload may nest the ticket under any of these (halopsa.md
# section 7; the same places dotMARC's reader looks).
WRAPPERS = ("ticket", "object", "data")


def basic_credentials(user: str, password: str) -> str:
    """The Authorization header value Halo sends for Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


class HaloWebhooks(HaloLookups):
    @staticmethod
    def _payload(request: WebhookRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedWebhook("halopsa webhook body is not JSON") from exc
        if isinstance(body, list):
            raise MalformedWebhook(
                "halopsa sent a batch of events: turn Batching off on the webhook "
                "(one delivery for each event)"
            )
        if not isinstance(body, dict):
            raise MalformedWebhook("halopsa webhook body is not a JSON object")
        return lower_keys(body)

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Basic auth as user "baton" with the tenant's webhook password; or the password alone
        as a bearer token or in X-Baton-Secret. Constant-time, both parts compared."""
        if not self.webhook_secret:
            raise WebhookRejected("no webhook password set: install the webhook first")
        scheme, _, value = (header(request.headers, "authorization") or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise WebhookRejected("the Basic credentials are not base64") from None
            user_ok, password_ok = _same(user, WEBHOOK_USER), _same(password, self.webhook_secret)
            if sep and user_ok and password_ok:
                return
            raise WebhookRejected("wrong webhook user or password")
        given = value if scheme.lower() == "bearer" else header(request.headers, SECRET_HEADER)
        if given is None or not given.strip():
            raise WebhookRejected("missing webhook credentials (Basic auth)")
        if not _same(given.strip(), self.webhook_secret):
            raise WebhookRejected("wrong webhook password")

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        p = self._payload(request)
        delivery_key = str(p.get("id") or "").strip()
        if not delivery_key:
            raise MalformedWebhook("halopsa webhook has no id (the delivery's GUID)")
        event = str(p.get("event") or "").strip()
        ticket_id = self._ticket_named(p, event)
        if ticket_id is None:
            return Ignored(f"not a ticket event ({event[:60] or 'no event'})", delivery_key)
        actor = int_or_none(p.get("agent_id"))
        if actor is not None and actor == self._own_agent():
            return Ignored("the change was made by Baton's own API agent", delivery_key)
        try:  # a webhook is answered at once: no waiting out a rate limit or an outage here
            ticket = lower_keys(self._object(f"/Tickets/{ticket_id}", patient=False))
        except NotFound:
            return Ignored(
                f"ticket {ticket_id} is not visible through the API (deleted, or outside the "
                "API agent's teams)",
                delivery_key,
            )
        status = int_or_none(ticket.get("status_id"))
        if ticket.get("deleted"):
            return Ignored(f"ticket {ticket_id} is deleted", delivery_key)
        if status is None:
            return Ignored(f"ticket {ticket_id} has no status", delivery_key)
        reported = self._status_reported(p)
        return TicketEvent(
            ticket_id=str(ticket_id),
            delivery_key=delivery_key,
            status=str(status),
            title=str(ticket.get("summary") or ""),
            actor=str(actor) if actor is not None else "",
            ticket_number=str(ticket_id),
            reported_status="" if reported is None else str(reported),
            closed=status == CLOSED_STATUS,
        )

    @staticmethod
    def _ticket_named(p: dict[str, Any], event: str) -> int | None:
        """ticket_id at the top or in a wrapper, the wrapped ticket's id, or (for an event about
        a ticket) object_id; never another kind of object's id."""
        wrapped = {w: lower_keys(p.get(w)) for w in WRAPPERS if isinstance(p.get(w), dict)}
        for scope in (p, *wrapped.values()):
            found = int_or_none(scope.get("ticket_id"))
            if found is not None and found > 0:
                return found
        candidates = [wrapped.get("ticket", {}).get("id")]
        if "ticket" in event.lower():
            candidates.append(p.get("object_id"))
        for value in candidates:
            found = int_or_none(value)
            if found is not None and found > 0:
                return found
        return None

    @staticmethod
    def _status_reported(p: dict[str, Any]) -> int | None:
        """The status the payload says the ticket moved to (small and full objects carry it;
        an event-only payload does not)."""
        wrapped = [lower_keys(p.get(w)) for w in WRAPPERS if isinstance(p.get(w), dict)]
        for scope in (p, *wrapped):
            for name in ("status_id", "new_status"):
                found = int_or_none(scope.get(name))
                if found is not None:
                    return found
        return None

    def _own_agent(self) -> int | None:
        try:
            return self._api_agent_id(patient=False)
        except AdapterError:  # an agent list out of reach must not lose an escalation
            return None
