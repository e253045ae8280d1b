"""Installing Baton's TicketWebhook: the webhook, its fields, and the API user excluded."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from adapters.autotask.client import eq
from adapters.autotask.lookups import AutotaskLookups
from adapters.base import AdapterError, WebhookInstallation
from adapters.values import int_or_none, lower_keys, squash

log = logging.getLogger(__name__)

WEBHOOK_NAME = "Baton escalations"
SECRET_KEY_CHARS = 40  # Autotask takes up to 64


class AutotaskWebhookInstall(AutotaskLookups):
    def install_webhook(
        self, callback_url: str, statuses: Sequence[str] = ()
    ) -> WebhookInstallation:
        # Not scoped by status: the webhook's subscribed fields already limit what is sent.
        existing = [
            w
            for w in (
                lower_keys(row)
                for row in self._query("TicketWebhooks", [eq("webhookUrl", callback_url)])
            )
            if w.get("webhookurl") == callback_url
        ]
        existing.sort(key=lambda w: not w.get("isactive"))
        if existing:
            webhook = existing[0]
            webhook_id = int(webhook["id"])
            changes: dict[str, Any] = {}
            if not webhook.get("isactive"):
                changes["IsActive"] = True  # Autotask turns a webhook off after 25 failures
            secret: str | None = None
            if not self.webhook_secret:  # Autotask never shows a webhook's secret again
                secret = changes["SecretKey"] = self._new_secret()
            if changes:
                self._call("PATCH", "TicketWebhooks", json={"id": webhook_id, **changes})
            self._webhook_children(webhook_id, fresh=False)
            return WebhookInstallation(
                id=str(webhook_id), url=callback_url, active=True, created=False, secret=secret
            )
        secret = self._new_secret()
        joiner = "&" if "?" in callback_url else "?"
        body = {
            "Name": WEBHOOK_NAME,
            "IsActive": True,
            "WebhookUrl": callback_url,
            # The same endpoint, told apart by its query: a Deactivated notice is only ever
            # logged and the webhook re-checked (see parse_webhook).
            "DeactivationUrl": f"{callback_url}{joiner}event=deactivated",
            "SecretKey": secret,
            "IsSubscribedToCreateEvents": False,
            "IsSubscribedToUpdateEvents": True,
            "IsSubscribedToDeleteEvents": False,
            "SendThresholdExceededNotification": True,
        }
        created = lower_keys(self._object(self._call("POST", "TicketWebhooks", json=body)))
        if created.get("itemid") is None:
            raise AdapterError("autotask created the webhook but returned no itemId")
        webhook_id = int(created["itemid"])
        self._webhook_children(webhook_id, fresh=True)
        return WebhookInstallation(
            id=str(webhook_id), url=callback_url, active=True, created=True, secret=secret
        )

    @staticmethod
    def _new_secret() -> str:
        return secrets.token_urlsafe(32)[:SECRET_KEY_CHARS]

    def _webhook_children(self, webhook_id: int, *, fresh: bool) -> None:
        """Status subscribed, ticket number and title always shown, Baton's API user excluded.
        One request at a time: parallel child writes trip the thread threshold."""
        field_ids = {
            squash(str(v.get("label") or "")): int_or_none(v.get("value"))
            for v in self._picklist("TicketWebhookFields", "fieldID")
        }
        if field_ids.get("status") is None:
            raise AdapterError("Autotask offers no Status field for ticket webhooks")
        wanted = [("status", True, False), ("ticketnumber", False, True), ("title", False, True)]
        have: set[int] = set()
        if not fresh:
            rows = self._query("TicketWebhookFields", [eq("webhookID", webhook_id)])
            have = {int_or_none(lower_keys(r).get("fieldid")) or -1 for r in rows}
        for label, subscribed, always in wanted:
            field_id = field_ids.get(label)
            if field_id is None or field_id in have:
                continue
            body = {
                "WebhookID": webhook_id,
                "FieldID": field_id,
                "IsSubscribedField": subscribed,
                "IsDisplayAlwaysField": always,
            }
            self._call("POST", f"TicketWebhooks/{webhook_id}/Fields", json=body)

        resource_id = self._api_resource_id()
        if resource_id is None:
            log.warning(
                "autotask: no resource for API user %s; its own changes are not excluded",
                self.username,
            )
            return
        if not fresh:
            rows = self._query("TicketWebhookExcludedResources", [eq("webhookID", webhook_id)])
            if any(int_or_none(lower_keys(r).get("resourceid")) == resource_id for r in rows):
                return
        body = {"WebhookID": webhook_id, "ResourceID": resource_id}
        self._call("POST", f"TicketWebhooks/{webhook_id}/ExcludedResources", json=body)

    def _api_resource_id(self) -> int | None:
        for field in ("userName", "email"):
            rows = self._query("Resources", [eq(field, self.username)], max_records=10)
            for row in rows:
                value = str(row.get(field) or "")
                if value.lower() == self.username.lower() and int_or_none(row.get("id")):
                    return int_or_none(row.get("id"))
        return None
