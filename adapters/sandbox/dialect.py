"""What a vendor's sandbox dialect gives the sandbox PSA; each vendor's folder has one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from adapters.sandbox.store import SandboxStore


@dataclass(frozen=True)
class SandboxDialect:
    # (store, the URL the app is reachable at) -> the vendor's REST API over the store's
    # records; it fires the vendor's webhooks when they change.
    create_app: Callable[[SandboxStore, str], WSGIApplication]
    # (the dialect's site URL, the sandbox connection's settings) -> the settings the vendor's
    # real adapter is built with: its fixed sandbox credentials aimed at the site.
    adapter_settings: Callable[[str, Mapping[str, str]], dict[str, str]]
    # (store, Baton's callback URL) -> registers the webhook in-process (embedded mode, before
    # anything is served); answers the secret deliveries are signed with, when Baton keeps one.
    register_webhook: Callable[[SandboxStore, str], str | None]
    # (the dialect's site URL) -> how to connect to it by hand, for the standalone server.
    describe: Callable[[str], list[str]]
    # The store's "Escalated" as this dialect's webhooks name it (a name, or a status id): the
    # embedded demo's trigger, set before anything is served to look it up.
    escalated_status: str
