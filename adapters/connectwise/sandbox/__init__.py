"""The sandbox PSA's ConnectWise dialect: its REST API (app.py), rendering (render.py), the
`conditions` language (query.py), callbacks (callbacks.py) and its own state (state.py)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.connectwise.sandbox.app import create_connectwise_app
from adapters.connectwise.sandbox.callbacks import register_webhook
from adapters.connectwise.sandbox.state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_COMPANY,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
)
from adapters.sandbox.dialect import SandboxDialect
from adapters.sandbox.store import ESCALATED_STATUS


def adapter_settings(site: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The real ConnectWise adapter's settings: the sandbox's fixed company and keys."""
    return {
        "site": site,
        "company_id": SANDBOX_COMPANY,
        "public_key": SANDBOX_PUBLIC_KEY,
        "private_key": SANDBOX_PRIVATE_KEY,
        "client_id": SANDBOX_CLIENT_ID,
    }


def describe(site: str) -> list[str]:
    return [
        f"ConnectWise site: {site}  company: {SANDBOX_COMPANY}",
        f"ConnectWise public key: {SANDBOX_PUBLIC_KEY}  private key: {SANDBOX_PRIVATE_KEY}",
    ]


DIALECT = SandboxDialect(
    create_app=create_connectwise_app,
    adapter_settings=adapter_settings,
    register_webhook=register_webhook,
    describe=describe,
    escalated_status=ESCALATED_STATUS,
)
