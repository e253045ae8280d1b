"""The PSA adapter interface and the vendor-neutral records that cross it.

Nothing vendor-specific leaves an adapter: the connector sees only these records,
these exceptions and the `PSAAdapter` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Visibility = Literal["internal", "client"]

# Every note Baton writes carries this marker so that a retried job can find it.
BATON_NOTE_MARKER = "[baton-handoff]"


# --- records -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: str
    title: str
    description: str = ""
    status: str = ""
    number: str = ""  # what the PSA shows people (Autotask "T20240101.0001"; ConnectWise the id)
    company: str = ""
    contact: str = ""
    priority: str = ""
    board: str = ""  # queue / board
    created_at: datetime | None = None
    url: str = ""  # link to the ticket in the PSA's own UI, when known


@dataclass(frozen=True)
class Note:
    id: str
    text: str
    author: str = ""
    created_at: datetime | None = None
    internal: bool = True


@dataclass(frozen=True)
class TimeEntry:
    member: str
    minutes: float
    started_at: datetime | None = None
    notes: str = ""


@dataclass(frozen=True)
class ConfigurationItem:
    name: str
    type: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # os, ip, serial, ...


@dataclass(frozen=True)
class TicketContext:
    ticket: Ticket
    notes: tuple[Note, ...] = ()
    time_entries: tuple[TimeEntry, ...] = ()
    configurations: tuple[ConfigurationItem, ...] = ()


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound webhook as received: the raw bytes are what signatures cover."""

    body: bytes
    headers: Any  # a case-insensitive mapping: werkzeug's Headers, or requests' structure
    query: Mapping[str, str]


@dataclass(frozen=True)
class TicketEvent:
    """A verified change to a ticket. The connector decides whether it is an escalation."""

    ticket_id: str
    delivery_key: str  # unique per delivery (ConnectWise MessageId, Autotask guid+id+sequence)
    status: str  # the status as the tenant's escalation_statuses name it (name or picklist id)
    title: str = ""
    actor: str = ""  # PSA identifier of the member who made the change
    ticket_number: str = ""


@dataclass(frozen=True)
class Ignored:
    """A verified delivery that is not a ticket status change Baton acts on."""

    reason: str
    delivery_key: str = ""
    recheck_webhook: bool = False  # e.g. an Autotask "Deactivated" notice


@dataclass(frozen=True)
class WebhookInstallation:
    id: str
    url: str
    active: bool
    created: bool  # False when an existing registration was found (and repaired)
    secret: str | None = None  # a webhook secret the PSA issued or Baton generated; store encrypted


@dataclass(frozen=True)
class StatusOption:
    id: str
    name: str
    group: str = ""  # ConnectWise board name; empty for Autotask


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    checks: tuple[tuple[str, bool, str], ...]  # (what, passed, plain-words detail)


# --- errors ----------------------------------------------------------------------------


class AdapterError(Exception):
    """Base of every error an adapter raises; nothing above sees `requests` exceptions."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, vendor_code: str = ""):
        super().__init__(message)
        self.status = status
        self.vendor_code = vendor_code


class WebhookRejected(AdapterError):
    """The delivery does not verify (bad or missing signature, forbidden key URL)."""


class MalformedWebhook(AdapterError):
    """The delivery verified but its body is not what the vendor sends."""


class AuthenticationFailed(AdapterError):
    """Keys wrong, or the API member lacks the role."""


class PermissionDenied(AdapterError):
    """Authenticated, but the PSA refuses this resource."""


class NotFound(AdapterError):
    pass


class Conflict(AdapterError):
    pass


class RateLimited(AdapterError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Unavailable(AdapterError):
    """5xx, timeouts and connection failures after the adapter's own retries."""

    retryable = True


class OutboundBlocked(AdapterError):
    """The outbound guard refused the address (scheme, private range, metadata host)."""


# --- the protocol ------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterOptions:
    allow_private_urls: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 4


class PSAAdapter(Protocol):
    """What every vendor implements. Constructed with the tenant's decrypted settings."""

    vendor: str
    # What TicketEvent.status carries: a status "name" (ConnectWise) or a picklist "id" (Autotask).
    status_by: Literal["name", "id"]

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise WebhookRejected unless the request is signed by the PSA."""

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        """Turn a verified payload into a TicketEvent, or say why it is ignored."""

    def fetch_context(self, ticket_id: str) -> TicketContext:
        """The ticket, all its notes, time entries and configuration items."""

    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        """Write a note; returns the PSA's note id."""

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        """The id of a note on the ticket whose text contains `marker`, if any."""

    def set_status(self, ticket_id: str, status: str) -> None:
        """Move the ticket to `status` (a name or id as the tenant configured it)."""

    def install_webhook(self, callback_url: str) -> WebhookInstallation:
        """Register Baton's webhook on the PSA exactly once (find and repair an existing one)."""

    def list_statuses(self) -> list[StatusOption]:
        """The statuses an admin can choose as "escalated"."""

    def test_connection(self) -> ConnectionCheck:
        """Call the PSA and say in plain words what works and what does not."""
