"""The PSA adapter interface and the vendor-neutral records that cross it.

Nothing vendor-specific leaves an adapter: the connector sees only these records,
these exceptions, the `PSAAdapter` protocol and each vendor's `PSAVendor` description.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from adapters.fields import SettingField

if TYPE_CHECKING:
    from adapters.sandbox.dialect import SandboxDialect

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
    # What an unsigned delivery said the status became, when the adapter read `status` back from
    # the PSA: it can only keep a delivery from counting as an escalation (the ticket may have
    # left the status and come back since: that arrives as its own delivery).
    reported_status: str = ""
    # The PSA says the ticket is closed or resolved (ConnectWise closedFlag, Autotask's Complete,
    # Halo's closed status): Baton then reads what fixed it through `fetch_resolution`.
    closed: bool = False


@dataclass(frozen=True)
class Resolution:
    """What fixed a ticket, as the PSA recorded it when it was closed."""

    text: str
    resolved_by: str = ""  # the person's name as the PSA shows it
    resolved_at: datetime | None = None


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
    # What the admin must still do by hand in the PSA after this install (its API cannot, or
    # may not, do it), with the values to paste: a credential issued just now is shown this once.
    manual: PanelSetup | None = None


@dataclass(frozen=True)
class StatusOption:
    id: str
    name: str
    group: str = ""  # ConnectWise board name; empty for Autotask


@dataclass(frozen=True)
class PSAMember:
    """A person in the PSA, as Baton would add them as a member."""

    psa_id: str  # as the PSA's webhooks name who acted (TicketEvent.actor)
    name: str
    email: str = ""
    active: bool = True


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


def require_settings(settings: Mapping[str, str], required: tuple[str, ...], vendor: str) -> None:
    """Refuse a connection whose required settings are absent or blank, naming each one."""
    missing = [k for k in required if not str(settings.get(k) or "").strip()]
    if missing:
        raise AdapterError(f"{vendor} settings are missing: {', '.join(missing)}")


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


class RequestLimiter(Protocol):
    """The PSA connection's limits, shared by every worker (adapters/http.py's PSALimiter)."""

    def hold(self, endpoint: str) -> AbstractContextManager[None]:
        """Wait (bounded) for a request slot and window; raise RateLimited if none comes."""
        ...


@dataclass(frozen=True)
class AdapterOptions:
    allow_private_urls: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    limiter: RequestLimiter | None = field(default=None, compare=False)


class PSAAdapter(Protocol):
    """What every vendor implements. Constructed with the tenant's decrypted settings."""

    vendor: str
    # What TicketEvent.status carries: a status "name" (ConnectWise) or a picklist "id" (Autotask).
    status_by: Literal["name", "id"]
    # True when install_webhook scopes the webhook by the trigger's statuses: the connector
    # installs it again whenever the trigger changes, so that it keeps seeing every escalation.
    webhook_follows_trigger: bool

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise WebhookRejected unless the request is signed by the PSA."""

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        """Turn a verified payload into a TicketEvent, or say why it is ignored."""

    def fetch_context(self, ticket_id: str) -> TicketContext:
        """The ticket, all its notes, time entries and configuration items."""

    def fetch_resolution(self, ticket_id: str) -> Resolution | None:
        """What fixed the ticket, who closed it and when; None while it is not closed."""

    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        """Write a note; returns the PSA's note id."""

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        """The id of a note on the ticket whose text contains `marker`, if any."""

    def set_status(self, ticket_id: str, status: str) -> None:
        """Move the ticket to `status` (a name or id as the tenant configured it)."""

    def install_webhook(
        self, callback_url: str, statuses: Sequence[str] = ()
    ) -> WebhookInstallation:
        """Register Baton's webhook on the PSA exactly once (find and repair an existing one).
        `statuses` is the trigger (as the tenant names them): a PSA that can scope its
        webhook narrower than every ticket uses them (see webhook_follows_trigger)."""

    def list_statuses(self) -> list[StatusOption]:
        """The statuses an admin can choose as "escalated"."""

    def list_members(self) -> list[PSAMember]:
        """The PSA's people who can work tickets, deactivated ones included (marked inactive)."""

    def test_connection(self) -> ConnectionCheck:
        """Call the PSA and say in plain words what works and what does not."""


class ProvesMembers(Protocol):
    """The adapter of a vendor whose panel identity is a frame message or a signed URL also
    does this."""

    def verify_member(self, member_id: str, proof: str, context: str = "") -> str:
        """The member's PSA id if the PSA accepts the proof; AuthenticationFailed if not."""


# --- what the connector knows of a vendor --------------------------------------------------


@dataclass(frozen=True)
class PanelStep:
    text: str
    values: tuple[tuple[str, str], ...] = ()  # (label, value to paste)


@dataclass(frozen=True)
class PanelSetup:
    """Steps an admin follows in the PSA, in its own words: putting the panel on the ticket
    screen, or setting up a webhook by hand."""

    steps: tuple[PanelStep, ...]
    note: str


@dataclass(frozen=True)
class PanelIdentity:
    """How the panel, framed by the PSA, learns who is looking at it.

    "sign_in_link": the PSA vouches for nobody; each member signs in with a link once.
    "frame_message": the panel asks its parent frame (postMessage) for the member's id and a
    proof, and the server has the adapter's `verify_member` check the proof with the PSA.
    "signed_url": the PSA puts the member's id and a proof in the panel's own URL (query
    parameters); the server has `verify_member` check it. Without them: a sign-in link.
    """

    method: Literal["sign_in_link", "frame_message", "signed_url"]
    request: str = ""  # the question the panel posts to its parent frame
    member_fields: tuple[str, ...] = ()  # where the reply's data (or the URL) has the member id
    proof_field: str = ""
    context_field: str = ""
    # Parent origins that may answer (regular expressions, as JavaScript reads them), besides
    # the tenant's own exact frame origins.
    origin_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class PSAVendor:
    """Everything the connector may know about one PSA; registered in adapters/__init__.py."""

    key: str  # the tenant's vendor and the /webhooks/<key>/<tenant> path segment
    name: str  # as people call it
    fields: tuple[SettingField, ...]  # the connection's settings
    connect: Callable[[Mapping[str, str], AdapterOptions], PSAAdapter]
    # What TicketEvent.status carries: a status "name" or a picklist "id".
    status_by: Literal["name", "id"]
    member_id_help: str  # what the PSA calls the id a Baton member is matched by
    panel_setup: Callable[
        [str, str], PanelSetup
    ]  # (the panel's URL for the tenant, Baton's origin)
    frame_origins: Callable[[Mapping[str, str]], list[str]]  # the PSA's screens, from the settings
    identity: PanelIdentity
    sandbox: Callable[[], SandboxDialect] | None = None  # the sandbox PSA's dialect of this vendor
    # The PSA's own request limits, declared for the shared limiter (issue 19) to enforce across
    # every worker: windows in the `limits` library's notation ("300/5 minutes"), and how many
    # requests may be in flight at once.
    request_windows: tuple[str, ...] = ()
    max_concurrent_requests: int | None = None
    # (Baton's callback URL) -> the webhook steps done by hand in the PSA, for a vendor whose
    # install leaves some (no credential in them: install_webhook shows a new one once).
    webhook_setup: Callable[[str], PanelSetup] | None = None
    # A vendor that speaks another's dialect (the sandbox) names it from the settings.
    speaks: Callable[[Mapping[str, str]], PSAVendor] | None = None
