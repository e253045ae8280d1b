"""Chat webhooks (Microsoft Teams, Slack): stored encrypted, checked by the outbound guard, posted.

A webhook URL is a credential (whoever has it can post to the channel), so it is never logged,
never returned by the API and never put into an error message: errors name the channel only.
"""

from __future__ import annotations

from typing import Any

import requests

from adapters.base import OutboundBlocked, Unavailable
from connector.models import Tenant
from connector.security import check_url, guarded_session
from connector.tenants import secret_box

CHANNELS = ("teams", "slack")
LABELS = {"teams": "Microsoft Teams", "slack": "Slack"}
TIMEOUT_SECONDS = 10.0


class ChatError(Exception):
    """Posting failed; the message is safe to store and show (it never holds the URL)."""


def webhook_urls(tenant: Tenant) -> dict[str, str]:
    """The tenant's configured chat webhooks, decrypted: {"teams": url, "slack": url}."""
    stored = secret_box().decrypt_json(tenant.chat_webhooks_encrypted)
    return {channel: url for channel, url in stored.items() if channel in CHANNELS and url}


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the outbound guard would refuse this URL, in words that do not repeat it."""
    try:
        check_url(url, allow_private=allow_private)
    except OutboundBlocked:
        if allow_private:
            return "must be an http(s) URL"
        return "refused by the outbound guard: an https URL to a public address is required"
    except Unavailable:
        return "its host name does not resolve"
    return None


def store_webhook_urls(tenant: Tenant, changes: dict[str, str]) -> None:
    """Apply {"teams": url | ""}: a URL replaces the stored one, an empty string clears it.

    The caller validates with url_problem() first and commits.
    """
    urls = webhook_urls(tenant)
    for channel, url in changes.items():
        if channel not in CHANNELS:
            raise ValueError(f"unknown chat channel {channel!r}")
        if url:
            urls[channel] = url
        else:
            urls.pop(channel, None)
    tenant.chat_webhooks_encrypted = secret_box().encrypt_json(urls)


def post(channel: str, url: str, payload: dict[str, Any], *, allow_private: bool) -> None:
    """POST one message; ChatError when the channel did not take it."""
    label = LABELS.get(channel, channel)
    session = guarded_session(allow_private)
    try:
        response = session.post(url, json=payload, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except OutboundBlocked:
        raise ChatError(f"{label}: the webhook address was refused by the outbound guard") from None
    except requests.Timeout:
        raise ChatError(f"{label}: the webhook did not answer in time") from None
    except requests.RequestException as exc:
        # requests' messages repeat the URL; the exception's type is all that is safe to keep.
        raise ChatError(f"{label}: cannot reach the webhook ({type(exc).__name__})") from None
    finally:
        session.close()
    if not 200 <= response.status_code < 300:
        # Slack answers short error codes (invalid_payload, no_service, channel_is_archived).
        detail = response.text[:80].strip() if response.status_code < 500 else ""
        raise ChatError(
            f"{label}: the webhook answered {response.status_code}"
            + (f" ({detail})" if detail else "")
        )
