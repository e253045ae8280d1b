"""Installing Baton's webhook: through POST /api/Webhook when the API agent may, else by hand.

Either way Baton issues the Basic password (stored encrypted, shown once when by hand). Halo's
numbers for a webhook's events are not documented, so the event (ticket status changed) is
always ticked by hand; the steps say exactly what to choose and paste.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from adapters.base import NotFound, PanelSetup, PanelStep, PermissionDenied, WebhookInstallation
from adapters.halopsa.client import first_record
from adapters.halopsa.lookups import HaloLookups
from adapters.halopsa.webhook import WEBHOOK_USER
from adapters.values import lower_keys

WEBHOOK_NAME = "Baton escalations"
BASIC_AUTHENTICATION = 1  # Webhook.authentication_type; the value is UNCONFIRMED (halopsa.md 7)
PASSWORD_CHARS = 40
EVENT = "Ticket Status Changed"
PAYLOAD = "Small object with key fields only"


def webhook_steps(callback_url: str, password: str | None = None) -> PanelSetup:
    """The webhook in Halo's words. `password` only right after Baton issued it."""
    values = [
        ("Name", WEBHOOK_NAME),
        ("Payload URL", callback_url),
        ("Method", "POST"),
        ("Authentication", "Basic Authentication"),
        ("Username", WEBHOOK_USER),
    ]
    if password:
        values.append(("Password", password))
    said = (
        "Copy the password now: Baton shows it this once and keeps it encrypted."
        if password
        else "Password: the one Baton showed when it issued it (Install again for a new one)."
    )
    return PanelSetup(
        steps=(
            PanelStep(
                "In Halo, open Configuration > Integrations > Webhooks and open "
                f"{WEBHOOK_NAME} (Install creates it when Halo lets the API agent), or click New."
            ),
            PanelStep(f"Set these values. {said}", tuple(values)),
            PanelStep(
                "Turn Batching off (one delivery for each event) and choose this payload type.",
                (("Payload type", PAYLOAD),),
            ),
            PanelStep(
                "Under Events add this event with the condition: the new status is one of the "
                "statuses chosen in Trigger (above). Make sure the webhook is Active, then save.",
                (("Event", EVENT),),
            ),
        ),
        note=(
            "Halo's webhooks are not signed: Baton checks the Basic password on every delivery, "
            "in constant time, and reads the ticket again through the API before it records an "
            "escalation, so a forged or replayed delivery cannot escalate a ticket that is not."
        ),
    )


class HaloWebhookInstall(HaloLookups):
    def install_webhook(
        self, callback_url: str, statuses: Sequence[str] = ()
    ) -> WebhookInstallation:
        # Not scoped by status: the webhook's subscribed fields already limit what is sent.
        try:
            return self._install_through_api(callback_url)
        except (PermissionDenied, NotFound):
            # The API agent may not manage webhooks (or the instance has no such API): a new
            # password, to be pasted by hand with the rest.
            password = self._new_password()
            return WebhookInstallation(
                id="", url=callback_url, active=False, created=False, secret=password,
                manual=webhook_steps(callback_url, password),
            )  # fmt: skip

    def _install_through_api(self, callback_url: str) -> WebhookInstallation:
        found = [
            w
            for w in self._rows("/Webhook", "webhooks")
            if lower_keys(w).get("url") == callback_url
        ]
        issued = None if self.webhook_secret else self._new_password()
        webhook: dict[str, Any] = {
            "name": WEBHOOK_NAME,
            "url": callback_url,
            "active": True,
            "content_type": "application/json",
            "authentication_type": BASIC_AUTHENTICATION,
            "basic_username": WEBHOOK_USER,
            "basic_password": issued or self.webhook_secret,
        }
        if found:
            webhook["id"] = found[0]["id"]  # repaired: active again, Baton's password again
        saved = lower_keys(first_record(self._json(
            self._call("POST", "/Webhook", json=[webhook], idempotent=True)
        )))  # fmt: skip
        return WebhookInstallation(
            id=str(saved.get("id") or webhook.get("id") or ""),
            url=str(saved.get("url") or callback_url),
            active=bool(saved.get("active", True)),
            created=not found,
            secret=issued,
            manual=webhook_steps(callback_url),
        )

    @staticmethod
    def _new_password() -> str:
        return secrets.token_urlsafe(PASSWORD_CHARS)[:PASSWORD_CHARS]
