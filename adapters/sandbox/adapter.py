"""A sandbox tenant is a real vendor adapter pointed at the sandbox PSA with its fixed keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.base import AdapterOptions, PSAAdapter

SANDBOX_COMPANY = "baton-sandbox"
SANDBOX_PUBLIC_KEY = "sandbox-public"
SANDBOX_PRIVATE_KEY = "sandbox-private"
SANDBOX_CLIENT_ID = "00000000-0000-4000-8000-000000000000"  # any clientId will do; it must be sent
# The Autotask dialect's API user: zone discovery knows this user only.
SANDBOX_AUTOTASK_USERNAME = "baton-sandbox@example.com"
SANDBOX_AUTOTASK_SECRET = "sandbox-secret"  # noqa: S105 (a published sandbox key)
SANDBOX_AUTOTASK_INTEGRATION_CODE = "SANDBOXCODE"


def connect(settings: Mapping[str, str], options: AdapterOptions, **kwargs: Any) -> PSAAdapter:
    dialect = settings.get("dialect") or "connectwise"
    site = (settings.get("site") or "").rstrip("/")
    if not site:
        raise ValueError("the sandbox connection needs its site URL")
    if dialect == "connectwise":
        from adapters.connectwise.client import ConnectWiseAdapter

        return ConnectWiseAdapter(
            {
                "site": f"{site}/connectwise" if not site.endswith("/connectwise") else site,
                "company_id": SANDBOX_COMPANY,
                "public_key": SANDBOX_PUBLIC_KEY,
                "private_key": SANDBOX_PRIVATE_KEY,
                "client_id": SANDBOX_CLIENT_ID,
            },
            options,
            **kwargs,
        )
    if dialect == "autotask":
        from adapters.autotask.client import AutotaskAdapter

        root = site if site.endswith("/autotask") else f"{site}/autotask"
        return AutotaskAdapter(
            {
                "username": SANDBOX_AUTOTASK_USERNAME,
                "secret": SANDBOX_AUTOTASK_SECRET,
                "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE,
                "zone_url": f"{root}/ATServicesRest/",
                "webhook_secret": settings.get("webhook_secret") or "",
            },
            options,
            **kwargs,
        )
    raise ValueError(f"the sandbox does not speak {dialect!r} yet")
