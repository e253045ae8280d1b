"""The sandbox PSA's Autotask dialect: its REST API (app.py), entities (collections.py),
rendering (render.py), filters (filters.py), errors (errors.py), ticket webhooks (webhooks.py,
serialise.py) and its own state (state.py)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.autotask.sandbox.app import create_autotask_app
from adapters.autotask.sandbox.render import STATUS_IDS
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
)
from adapters.autotask.sandbox.webhooks import register_webhook
from adapters.sandbox.dialect import SandboxDialect
from adapters.sandbox.store import ESCALATED_STATUS


def zone_url(site: str) -> str:
    """What zone discovery answers for the sandbox API user: the dialect's REST root."""
    return site.rstrip("/") + "/ATServicesRest/"


def adapter_settings(site: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The real Autotask adapter's settings: the sandbox API user, its zone, and the webhook
    secret Baton keeps once it installed the webhook."""
    return {
        "username": SANDBOX_AUTOTASK_USERNAME,
        "secret": SANDBOX_AUTOTASK_SECRET,
        "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE,
        "zone_url": zone_url(site),
        "webhook_secret": settings.get("webhook_secret") or "",
    }


def describe(site: str) -> list[str]:
    return [f"Autotask zone URL: {zone_url(site)}  API user: {SANDBOX_AUTOTASK_USERNAME}"]


DIALECT = SandboxDialect(
    create_app=create_autotask_app,
    adapter_settings=adapter_settings,
    register_webhook=register_webhook,
    describe=describe,
    escalated_status=str(STATUS_IDS[ESCALATED_STATUS]),
)
