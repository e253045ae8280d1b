"""The "sandbox" vendor: a real vendor's adapter aimed at the sandbox PSA, in that vendor's
dialect, with the dialect's fixed sandbox credentials. Its tenants see that vendor's screens,
ids and webhooks; the panel may also be framed by the sandbox's own pages."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace

from adapters.base import AdapterOptions, PSAAdapter, PSAVendor
from adapters.fields import SettingField
from adapters.sandbox.dialect import SandboxDialect
from adapters.sandbox.store import SandboxStore
from adapters.values import origin_of


def dialects() -> dict[str, PSAVendor]:
    """The vendors the sandbox speaks: every registered one with a sandbox dialect, in order.
    The first is what a connection without a dialect speaks."""
    from adapters import VENDOR_PACKAGES

    found = [importlib.import_module(name) for name in VENDOR_PACKAGES if name != __package__]
    return {m.VENDOR.key: m.VENDOR for m in found if m.VENDOR.sandbox is not None}


def dialect_of(settings: Mapping[str, str]) -> PSAVendor:
    spoken = dialects()
    key = settings.get("dialect") or next(iter(spoken))
    if key not in spoken:
        raise ValueError(f"the sandbox does not speak {key!r}")
    return spoken[key]


def sandbox_of(spoken: PSAVendor) -> SandboxDialect:
    assert spoken.sandbox is not None  # dialects() lists only vendors that have one
    return spoken.sandbox()


def dialect_site(settings: Mapping[str, str]) -> str:
    """Where the connection's dialect is served: the sandbox URL and the dialect's mount."""
    site = (settings.get("site") or "").rstrip("/")
    if not site:
        raise ValueError("the sandbox connection needs its site URL")
    mount = "/" + dialect_of(settings).key
    return site if site.endswith(mount) else site + mount


def connect(settings: Mapping[str, str], options: AdapterOptions) -> PSAAdapter:
    spoken = dialect_of(settings)
    dialect_settings = sandbox_of(spoken).adapter_settings(dialect_site(settings), settings)
    return spoken.connect(dialect_settings, options)


def register_webhook(store: SandboxStore, settings: Mapping[str, str], url: str) -> str | None:
    """Baton's webhook for the connection's dialect, registered in-process (embedded mode);
    answers the secret its deliveries are signed with, when Baton must keep one."""
    return sandbox_of(dialect_of(settings)).register_webhook(store, url)


def escalated_status(settings: Mapping[str, str]) -> str:
    """The sandbox's "Escalated" as the connection's dialect names it: the demo's trigger."""
    return sandbox_of(dialect_of(settings)).escalated_status


def speaks(settings: Mapping[str, str]) -> PSAVendor:
    spoken = dialect_of(settings)

    def frame_origins(connection: Mapping[str, str]) -> list[str]:
        own = origin_of(connection.get("site", ""))
        framed = spoken.frame_origins(connection)
        return [*framed, own] if own and own not in framed else framed

    return replace(spoken, frame_origins=frame_origins)


FIELDS = (
    SettingField("dialect", "Dialect", kind="choice", choices=tuple(dialects()), required=False),
    SettingField(
        "site",
        "Sandbox URL",
        kind="url",
        help="Where the sandbox PSA runs; embedded mode fills this in",
    ),
    SettingField(
        "webhook_secret",
        "Webhook secret",
        secret=True,
        required=False,
        min_length=10,
        max_length=64,
        help="For dialects that sign with a shared secret: kept when Baton installs the webhook",
    ),
)

# Without a dialect setting the sandbox speaks its first dialect; `speaks` gives the one set.
VENDOR = replace(
    next(iter(dialects().values())),
    key="sandbox",
    name="Sandbox PSA",
    fields=FIELDS,
    connect=connect,
    sandbox=None,
    speaks=speaks,
)
