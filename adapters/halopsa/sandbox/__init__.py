"""The sandbox PSA's Halo dialect: its REST API and authorisation server (app.py), request
helpers (http.py), rendering (render.py), webhooks (webhooks.py) and its own state (state.py)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.halopsa.sandbox.app import create_halopsa_app
from adapters.halopsa.sandbox.render import STATUS_IDS
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TAB_SECRET,
)
from adapters.halopsa.sandbox.webhooks import register_webhook
from adapters.sandbox.dialect import SandboxDialect
from adapters.sandbox.store import ESCALATED_STATUS


def adapter_settings(site: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The real Halo adapter's settings: the sandbox application (no tenant: authinfo names
    it), the custom tab's secret, and the webhook password Baton keeps once installed."""
    return {
        "site": site,
        "client_id": SANDBOX_HALO_CLIENT_ID,
        "client_secret": SANDBOX_HALO_CLIENT_SECRET,
        "tab_secret": SANDBOX_HALO_TAB_SECRET,
        "webhook_secret": settings.get("webhook_secret") or "",
    }


def describe(site: str) -> list[str]:
    return [
        f"HaloPSA URL: {site}  client ID: {SANDBOX_HALO_CLIENT_ID}",
        f"HaloPSA client secret: {SANDBOX_HALO_CLIENT_SECRET}  tab secret: "
        f"{SANDBOX_HALO_TAB_SECRET}",
    ]


DIALECT = SandboxDialect(
    create_app=create_halopsa_app,
    adapter_settings=adapter_settings,
    register_webhook=register_webhook,
    describe=describe,
    escalated_status=str(STATUS_IDS[ESCALATED_STATUS]),
)
