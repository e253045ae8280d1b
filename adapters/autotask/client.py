"""Autotask PSA REST API (V1.0) and ticket webhooks.

Reference: ../shared/reference/psa-apis.md sections 4-6.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import requests

from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    ConfigurationItem,
    ConnectionCheck,
    Ignored,
    MalformedWebhook,
    Note,
    NotFound,
    OutboundBlocked,
    PermissionDenied,
    RateLimited,
    StatusOption,
    Ticket,
    TicketContext,
    TicketEvent,
    TimeEntry,
    Unavailable,
    Visibility,
    WebhookInstallation,
    WebhookRejected,
    WebhookRequest,
)
from adapters.http import MAX_RETRY_AFTER_SECONDS, VendorHTTP

log = logging.getLogger(__name__)

# Zone discovery needs no credentials and is exempt from the thread limit. V1.0 is pinned:
# versionInformation also lists V2.0, whose zoneInformation is a 404.
ZONE_DISCOVERY_URL = "https://webservices.autotask.net/atservicesrest/V1.0/zoneInformation"
API_VERSION = "V1.0/"
ZONE_HOST_SUFFIX = ".autotask.net"
MAX_RECORDS = 500  # the query API's maximum page
MAX_PAGES = 200
THREADS_PER_ENDPOINT = 3  # per API tracking identifier and endpoint, for integrations since 2023.1
MAX_NAME_LOOKUPS = 40  # resources/contacts resolved to names per adapter; the rest keep their ids
NOTE_MAX_CHARS = 32000
NOTE_TAIL_CHARS = 400  # kept when a note is shortened: the marker Baton finds notes by is last
TITLE_MAX_CHARS = 250
DEFAULT_NOTE_TITLE = "Baton escalation handoff"
WORKFLOW_RULE_NOTE = 13  # noteType "Workflow Rule Note": written by the system, not by people
PUBLISH_ALL = 1  # "All Autotask Users": shows in the client-facing (outsourced) copy
PUBLISH_INTERNAL = 2  # "Internal Users"
NOTE_TYPE_SUMMARY = 1
WEBHOOK_NAME = "Baton escalations"
SECRET_KEY_CHARS = 40  # Autotask takes up to 64
REQUIRED_SETTINGS = ("username", "secret", "integration_code")

UNKNOWN_USER = "Autotask does not know the API user {user}: check API user"
CREDENTIALS_HELP = "Autotask refused the API user and Secret: wrong Secret or API user"
INTEGRATION_CODE_HELP = "the Integration code (API tracking identifier) is wrong"
TICKETS_HELP = (
    "the API user's security level cannot read Tickets: give it a security level "
    "with ticket permissions (e.g. a copy of API User (system))"
)
_VENDOR_CODE = re.compile(r"\b(itgenatr\d+)\b", re.IGNORECASE)
_PERMISSION = re.compile(
    r"adequate permission|sufficient permission|not have (the )?permission|permission denied",
    re.IGNORECASE,
)
# Autotask escapes these (and everything non-ASCII) as \uXXXX inside JSON strings.
_AUTOTASK_ESCAPED = {"&", "<", ">", "'", "+", "`"}


@dataclass(frozen=True)
class Zone:
    url: str  # e.g. https://webservices5.autotask.net/ATServicesRest/
    web_url: str = ""  # e.g. https://ww5.autotask.net/


# username -> its zone; re-resolved after a 401 (tenants move between zones).
_ZONES: dict[str, Zone] = {}
# (username, endpoint) -> the 3 request slots Autotask allows at once.
_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


# --- helpers -------------------------------------------------------------------------------------


def error_message(response: requests.Response) -> tuple[str, str]:
    """Autotask's {"errors": ["..."]} (or ASP.NET's {"Message": ...}) as one readable line."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            return "an HTML page instead of JSON (is the zone URL an Autotask REST URL?)", ""
        return text[:300], _vendor_code(text)
    messages: list[str] = []
    if isinstance(body, dict):
        lowered = _lower_keys(body)
        errors = lowered.get("errors")
        for err in errors if isinstance(errors, list) else [errors] if errors else []:
            if isinstance(err, dict):
                err = _lower_keys(err).get("message") or json.dumps(err)
            messages.append(str(err))
        messages += [str(lowered[k]) for k in ("message", "exceptionmessage") if lowered.get(k)]
    elif isinstance(body, list):
        messages = [str(item) for item in body]
    text = "; ".join(m.strip() for m in messages if m.strip()) or response.text.strip()[:300]
    return text[:500], _vendor_code(text)


def _vendor_code(text: str) -> str:
    match = _VENDOR_CODE.search(text)
    return match.group(1) if match else ""


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def classify(exc: AdapterError) -> AdapterError:
    """Autotask's status codes do not mean what they say: read the message too."""
    text, squashed = str(exc), _squash(str(exc))
    kw: dict[str, Any] = {"status": exc.status, "vendor_code": exc.vendor_code}
    if "threadthreshold" in squashed or "itgenatr005" in squashed:
        return RateLimited(
            f"{text} (Autotask allows {THREADS_PER_ENDPOINT} concurrent requests per endpoint)",
            retry_after=getattr(exc, "retry_after", None),
            **kw,
        )
    if isinstance(exc, RateLimited):
        return exc
    if "threshold" in squashed and "exceed" in squashed:  # the hourly request threshold
        return RateLimited(text, **kw)
    if exc.status == 401:
        return AuthenticationFailed(f"{text} ({CREDENTIALS_HELP})", **kw)
    if "zoneinformationcouldnotbedetermined" in squashed:
        return AuthenticationFailed(text, **kw)
    if "integrationcode" in squashed or "trackingidentifier" in squashed:
        return AuthenticationFailed(f"{text} ({INTEGRATION_CODE_HELP})", **kw)
    if _PERMISSION.search(text):
        return PermissionDenied(text, **kw)
    if "nomatchingrecords" in squashed:
        return NotFound(text, **kw)
    return exc


def autotask_escape(body: str) -> str:
    """Escape JSON string contents the way Autotask serialises webhooks: & < > ' + ` " and
    every non-ASCII character as \\uXXXX. Only used as a fallback when a proxy un-escaped them."""
    out: list[str] = []
    in_string = escaped = False
    for ch in body:
        if in_string and escaped:
            escaped = False
            if ch == '"':  # \" -> \u0022: replace the backslash already written
                out[-1] = "\\u0022"
                continue
            out.append(ch)
        elif in_string and ch == "\\":
            escaped = True
            out.append(ch)
        elif ch == '"':
            in_string = not in_string
            out.append(ch)
        elif in_string and (ch in _AUTOTASK_ESCAPED or ord(ch) > 127):
            units = ch.encode("utf-16-be")
            out += [f"\\u{units[i] << 8 | units[i + 1]:04X}" for i in range(0, len(units), 2)]
        else:
            out.append(ch)
    return "".join(out)


def hook_signature(body: bytes, secret: str) -> str:
    """X-Hook-Signature's value without "sha1=": base64(HMAC-SHA1(secret, body))."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def zone_base(url: str) -> str:
    """The zone root ending in "/": a pasted .../V1.0/ path or a missing slash is normalised."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    url = re.sub(r"/v1\.0/?$", "", url.rstrip("/"), flags=re.IGNORECASE)
    return url.rstrip("/") + "/"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _endpoint(url: str) -> str:
    """The object endpoint a URL calls (Autotask's thread limit is per endpoint)."""
    match = re.search(r"/v1\.0/([^/?#]+)", urlsplit(url).path, re.IGNORECASE)
    return match.group(1).lower() if match else urlsplit(url).path.lower()


@contextmanager
def _thread_slot(username: str, url: str) -> Iterator[None]:
    key = (username.lower(), _endpoint(url))
    with _LOCK:
        slot = _SLOTS.setdefault(key, threading.BoundedSemaphore(THREADS_PER_ENDPOINT))
    with slot:
        yield


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _lower_keys(value: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _numeric(value: str) -> bool:
    return value.isascii() and value.isdigit()  # "²".isdigit() is True


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _numeric(value.strip()):
        return int(value.strip())
    return None


def _label(value: str) -> str:
    return _squash(value)


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"op": "eq", "field": field, "value": value}


def _shorten(text: str, limit: int = NOTE_MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    gap = "\n[... shortened to fit Autotask's note size ...]\n"
    return text[: limit - NOTE_TAIL_CHARS - len(gap)] + gap + text[-NOTE_TAIL_CHARS:]


# --- the adapter ---------------------------------------------------------------------------------


class AutotaskAdapter:
    vendor = "autotask"
    status_by: Literal["name", "id"] = "id"

    def __init__(
        self,
        settings: Mapping[str, str],
        options: AdapterOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        missing = [k for k in REQUIRED_SETTINGS if not str(settings.get(k) or "").strip()]
        if missing:
            raise AdapterError(f"Autotask settings are missing: {', '.join(missing)}")
        self.options = options
        self.username = settings["username"].strip()
        self.integration_code = settings["integration_code"].strip()
        self._secret = settings["secret"].strip()
        self.webhook_secret = str(settings.get("webhook_secret") or "").strip()
        zone_url = str(settings.get("zone_url") or "").strip()
        self.configured_zone = zone_base(zone_url) if zone_url else ""
        self.sleep = sleep
        # One attempt per call here: _send retries, knowing what Autotask's 500s mean.
        single = AdapterOptions(
            allow_private_urls=options.allow_private_urls,
            timeout_seconds=options.timeout_seconds,
            max_attempts=1,
        )
        self.http = VendorHTTP(self.vendor, single, error_message=error_message, sleep=sleep)
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._names: dict[tuple[str, int], str] = {}

    # --- transport -------------------------------------------------------------------------------

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "ApiIntegrationCode": self.integration_code,
            "UserName": self.username,
            "Secret": self._secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _send(
        self, method: str, url: str, *, credentials: bool = True, **kw: Any
    ) -> requests.Response:
        """One call with Autotask-aware retries: thread-threshold refusals, 429 and (for
        reads and idempotent writes) 5xx are retried with backoff; a create is retried only
        when Autotask refused it before doing anything."""
        headers = self._headers if credentials else {"Accept": "application/json"}
        attempts = max(1, self.options.max_attempts)
        idempotent = method in ("GET", "PATCH") or "/query" in urlsplit(url).path.lower()
        for attempt in range(1, attempts + 1):
            try:
                if not credentials:
                    return self.http.request(method, url, headers=headers, **kw)
                with _thread_slot(self.username, url):
                    return self.http.request(method, url, headers=headers, **kw)
            except OutboundBlocked:
                raise
            except AdapterError as exc:
                error = classify(exc)
                retry = isinstance(error, RateLimited) or (
                    idempotent and isinstance(error, Unavailable)
                )
                if retry and attempt < attempts:
                    after = error.retry_after if isinstance(error, RateLimited) else None
                    wait = self._backoff(attempt) if after is None else after
                    if wait <= MAX_RETRY_AFTER_SECONDS:
                        self.sleep(wait)
                        continue
                if error is exc:
                    raise
                raise error from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(1.0 * 2 ** (attempt - 1), 8.0) * random.uniform(0.75, 1.0)

    def _zone(self, *, refresh: bool = False) -> Zone:
        if self.configured_zone:
            return Zone(self.configured_zone)
        key = self.username.lower()
        with _LOCK:
            if not refresh and key in _ZONES:
                return _ZONES[key]
        try:
            response = self._send(
                "GET", ZONE_DISCOVERY_URL, params={"user": self.username}, credentials=False
            )
            info = _lower_keys(self._json(response))
        except AuthenticationFailed as exc:  # HTTP 500 "Zone information could not be determined"
            raise AuthenticationFailed(
                UNKNOWN_USER.format(user=self.username), status=exc.status
            ) from exc
        url = str(info.get("url") or "").strip()
        if not url:
            raise AuthenticationFailed(UNKNOWN_USER.format(user=self.username))
        zone = Zone(zone_base(url), str(info.get("weburl") or "").strip())
        host = origin(zone.url)[1]
        trusted = (origin(zone.url)[0] == "https" and host.endswith(ZONE_HOST_SUFFIX)) or origin(
            zone.url
        )[:2] == origin(ZONE_DISCOVERY_URL)[:2]
        if not trusted:  # the credentials go to this host: never to one Autotask did not name
            raise AdapterError(f"Autotask zone discovery answered an unexpected host {host!r}")
        with _LOCK:
            _ZONES[key] = zone
        return zone

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        """An API call relative to the zone's V1.0 root; after a 401 the zone is re-read once
        (a tenant moved to another zone answers 401 on the old one)."""
        if path.startswith(("http://", "https://")):
            return self._send(method, path, **kw)
        zone = self._zone().url
        try:
            return self._send(method, zone + API_VERSION + path, **kw)
        except AuthenticationFailed as exc:
            if self.configured_zone or exc.status != 401:
                raise
            fresh = self._zone(refresh=True).url
            if fresh == zone:
                raise
        return self._send(method, fresh + API_VERSION + path, **kw)

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            where = urlsplit(response.url).path
            raise AdapterError(
                f"autotask answered {where} with something that is not JSON "
                "(is the zone URL an Autotask REST URL?)"
            ) from exc

    def _object(self, response: requests.Response) -> dict[str, Any]:
        body = self._json(response)
        if not isinstance(body, dict):
            where = urlsplit(response.url).path
            raise AdapterError(f"autotask answered {where} with {type(body).__name__}")
        return body

    def _item(self, path: str) -> dict[str, Any] | None:
        """GET {Entity}/{id}: Autotask answers a missing record with {"item": null}."""
        item = self._object(self._call("GET", path)).get("item")
        return item if isinstance(item, dict) else None

    def _query(
        self, entity: str, filters: list[dict[str, Any]], *, max_records: int | None = None
    ) -> list[dict[str, Any]]:
        """Every page of a query, following pageDetails.nextPageUrl until it is null."""
        body = {"filter": filters, "MaxRecords": max_records or MAX_RECORDS}
        response = self._call("POST", f"{entity}/query", json=body)
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._object(response)
            items = page.get("items")
            if not isinstance(items, list):
                raise AdapterError(f"autotask answered {entity}/query without items")
            rows.extend(item for item in items if isinstance(item, dict))
            next_url = _lower_keys(page.get("pageDetails")).get("nextpageurl")
            if not next_url or not items:
                return rows
            response = self._call("POST", self._next_url(str(next_url)), json=body)
        raise AdapterError(f"autotask: {entity}/query has more than {MAX_PAGES} pages")

    def _next_url(self, link: str) -> str:
        base = self._zone().url
        url = urljoin(base, link)
        if origin(url) != origin(base):  # never send the credentials to another host
            raise AdapterError(f"autotask pagination pointed at {urlsplit(url).hostname}")
        return url

    @staticmethod
    def _ticket_id(ticket_id: str) -> str:
        value = str(ticket_id).strip()
        if not _numeric(value):
            raise NotFound(f"autotask ticket ids are numbers, not {value[:40]!r}")
        return value

    # --- field information and names -------------------------------------------------------------

    def _entity_fields(self, entity: str) -> list[dict[str, Any]]:
        if entity not in self._fields:
            body = self._object(self._call("GET", f"{entity}/entityInformation/fields"))
            fields = body.get("fields")
            self._fields[entity] = [f for f in fields or [] if isinstance(f, dict)]
        return self._fields[entity]

    def _picklist(self, entity: str, field: str) -> list[dict[str, Any]]:
        """The picklist values of one field, as Autotask orders them."""
        for f in self._entity_fields(entity):
            if str(f.get("name") or "").lower() == field.lower():
                values = [v for v in f.get("picklistValues") or [] if isinstance(v, dict)]
                return sorted(values, key=lambda v: _int_or_none(v.get("sortOrder")) or 0)
        return []

    def _labels(self, entity: str, field: str) -> dict[str, str]:
        """value -> label, or nothing when the field information is out of reach."""
        try:
            return {
                str(v.get("value")): str(v.get("label") or "")
                for v in self._picklist(entity, field)
            }
        except (PermissionDenied, NotFound):
            return {}

    def _name(self, entity: str, record_id: Any) -> str:
        """A resource's, contact's or company's name, or its id when that is not cheap."""
        rid = _int_or_none(record_id)
        if rid is None:
            return ""
        key = (entity, rid)
        if key in self._names:
            return self._names[key]
        if len(self._names) >= MAX_NAME_LOOKUPS:
            return str(rid)
        try:
            item = self._item(f"{entity}/{rid}") or {}
        except (PermissionDenied, NotFound):
            item = {}
        if entity == "Companies":
            name = str(item.get("companyName") or "")
        else:
            first, last = item.get("firstName") or "", item.get("lastName") or ""
            name = f"{first} {last}".strip()
        self._names[key] = name or str(rid)
        return self._names[key]

    # --- reading ---------------------------------------------------------------------------------

    def fetch_context(self, ticket_id: str) -> TicketContext:
        tid = self._ticket_id(ticket_id)
        raw = self._item(f"Tickets/{tid}")
        if raw is None:
            raise NotFound(f"autotask has no ticket {tid}")
        priorities = self._labels("Tickets", "priority")
        queues = self._labels("Tickets", "queueID")
        web_url = self._zone().web_url
        ticket = Ticket(
            id=tid,
            title=str(raw.get("title") or ""),
            description=str(raw.get("description") or ""),
            status=str(raw.get("status") if raw.get("status") is not None else ""),
            number=str(raw.get("ticketNumber") or tid),
            company=self._name("Companies", raw.get("companyID")),
            contact=self._name("Contacts", raw.get("contactID")),
            priority=priorities.get(str(raw.get("priority")), str(raw.get("priority") or "")),
            board=queues.get(str(raw.get("queueID")), str(raw.get("queueID") or "")),
            created_at=_when(raw.get("createDate")),
            url=(
                f"{web_url.rstrip('/')}/Autotask/AutotaskExtend/ExecuteCommand.aspx"
                f"?Code=OpenTicketDetail&TicketID={tid}"
                if web_url
                else ""
            ),
        )
        return TicketContext(
            ticket=ticket,
            notes=tuple(self._notes(tid)),
            time_entries=tuple(self._time_entries(tid)),
            configurations=tuple(self._configurations(tid, raw)),
        )

    def _notes(self, tid: str) -> list[Note]:
        rows = [
            n
            for n in self._query("TicketNotes", [_eq("ticketID", int(tid))])
            if _int_or_none(n.get("noteType")) != WORKFLOW_RULE_NOTE
        ]
        rows.sort(
            key=lambda n: (str(n.get("createDateTime") or ""), _int_or_none(n.get("id")) or 0)
        )
        notes = []
        for n in rows:
            if n.get("creatorResourceID") is not None:
                author = self._name("Resources", n.get("creatorResourceID"))
            else:
                author = self._name("Contacts", n.get("createdByContactID"))
            title = str(n.get("title") or "").strip()
            text = str(n.get("description") or "")
            notes.append(
                Note(
                    id=str(n.get("id", "")),
                    text=f"{title}\n\n{text}" if title else text,
                    author=author,
                    created_at=_when(n.get("createDateTime")),
                    internal=_int_or_none(n.get("publish")) != PUBLISH_ALL,
                )
            )
        return notes

    def _time_entries(self, tid: str) -> list[TimeEntry]:
        entries = []
        rows = self._query("TimeEntries", [_eq("ticketID", int(tid))])
        rows.sort(key=lambda e: str(e.get("startDateTime") or e.get("dateWorked") or ""))
        for e in rows:
            start, end = _when(e.get("startDateTime")), _when(e.get("endDateTime"))
            hours = e.get("hoursWorked")
            if isinstance(hours, (int, float)) and not isinstance(hours, bool):
                minutes = round(float(hours) * 60, 2)  # hoursWorked has 4 decimals
            elif start and end:
                minutes = (end - start).total_seconds() / 60
            else:
                minutes = 0.0
            text = "\n".join(str(e[k]) for k in ("summaryNotes", "internalNotes") if e.get(k))
            entries.append(
                TimeEntry(
                    member=self._name("Resources", e.get("resourceID")),
                    minutes=minutes,
                    started_at=start or _when(e.get("dateWorked")),
                    notes=text,
                )
            )
        return entries

    def _configurations(self, tid: str, ticket: dict[str, Any]) -> list[ConfigurationItem]:
        ids: list[int] = []
        main = _int_or_none(ticket.get("configurationItemID"))
        if main is not None:
            ids.append(main)
        try:
            extra = self._query("TicketAdditionalConfigurationItems", [_eq("ticketID", int(tid))])
        except (PermissionDenied, NotFound):
            extra = []
        for row in extra:
            cid = _int_or_none(row.get("configurationItemID"))
            if cid is not None and cid not in ids:
                ids.append(cid)
        items = []
        for cid in ids:
            try:
                c = self._item(f"ConfigurationItems/{cid}")
            except (NotFound, PermissionDenied):
                c = None
            if c is None:
                continue  # deleted since it was attached; the rest still helps
            fields = {
                "os": "rmmDeviceAuditOperatingSystem",
                "ip": "rmmDeviceAuditIPAddress",
                "hostname": "rmmDeviceAuditHostname",
                "serial": "serialNumber",
                "reference number": "referenceNumber",
            }
            details = {k: str(c[f]) for k, f in fields.items() if c.get(f)}
            name = str(
                c.get("referenceTitle")
                or c.get("rmmDeviceAuditHostname")
                or c.get("referenceNumber")
                or f"Configuration item {cid}"
            )
            kind = self._labels("ConfigurationItems", "configurationItemType").get(
                str(c.get("configurationItemType")), ""
            )
            items.append(ConfigurationItem(name=name, type=kind, details=details))
        return items

    # --- writing ---------------------------------------------------------------------------------

    def post_note(
        self, ticket_id: str, text: str, *, visibility: Visibility, title: str = ""
    ) -> str:
        tid = self._ticket_id(ticket_id)
        body = {
            "ticketID": int(tid),
            "title": (title.strip() or DEFAULT_NOTE_TITLE)[:TITLE_MAX_CHARS],
            "description": _shorten(text),  # plain text: Autotask's API cannot write rich text
            "noteType": NOTE_TYPE_SUMMARY,
            "publish": PUBLISH_INTERNAL if visibility == "internal" else PUBLISH_ALL,
        }
        created = self._object(self._call("POST", f"Tickets/{tid}/Notes", json=body))
        item_id = _lower_keys(created).get("itemid")
        if item_id is None:
            raise AdapterError("autotask created a note but returned no itemId")
        return str(item_id)

    def find_note(self, ticket_id: str, marker: str) -> str | None:
        tid = self._ticket_id(ticket_id)
        filters = [
            _eq("ticketID", int(tid)),
            {"op": "contains", "field": "description", "value": marker},
        ]
        for note in self._query("TicketNotes", filters):
            if marker in str(note.get("description") or ""):  # the server filter only narrows
                return str(note.get("id"))
        return None

    def _status_id(self, status: str) -> int:
        wanted = status.strip()
        values = self._picklist("Tickets", "status")
        if _numeric(wanted):
            return int(wanted)
        for v in values:
            if str(v.get("label") or "").strip().lower() == wanted.lower():
                value = _int_or_none(v.get("value"))
                if value is not None:
                    return value
        raise NotFound(f"Autotask has no ticket status {status!r}")

    def set_status(self, ticket_id: str, status: str) -> None:
        tid = self._ticket_id(ticket_id)
        wanted = self._status_id(status)
        ticket = self._item(f"Tickets/{tid}")
        if ticket is None:
            raise NotFound(f"autotask has no ticket {tid}")
        if _int_or_none(ticket.get("status")) == wanted:
            return  # already there; a PATCH would only fire another webhook
        self._call("PATCH", "Tickets", json={"id": int(tid), "status": wanted})

    def list_statuses(self) -> list[StatusOption]:
        return [
            StatusOption(id=str(v.get("value")), name=str(v.get("label") or ""))
            for v in self._picklist("Tickets", "status")
            if v.get("isActive", True) and v.get("value") is not None
        ]

    # --- the webhook -----------------------------------------------------------------------------

    def install_webhook(self, callback_url: str) -> WebhookInstallation:
        existing = [
            w
            for w in (
                _lower_keys(row)
                for row in self._query("TicketWebhooks", [_eq("webhookUrl", callback_url)])
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
        created = _lower_keys(self._object(self._call("POST", "TicketWebhooks", json=body)))
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
            _label(str(v.get("label") or "")): _int_or_none(v.get("value"))
            for v in self._picklist("TicketWebhookFields", "fieldID")
        }
        if field_ids.get("status") is None:
            raise AdapterError("Autotask offers no Status field for ticket webhooks")
        wanted = [("status", True, False), ("ticketnumber", False, True), ("title", False, True)]
        have: set[int] = set()
        if not fresh:
            rows = self._query("TicketWebhookFields", [_eq("webhookID", webhook_id)])
            have = {_int_or_none(_lower_keys(r).get("fieldid")) or -1 for r in rows}
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
            rows = self._query("TicketWebhookExcludedResources", [_eq("webhookID", webhook_id)])
            if any(_int_or_none(_lower_keys(r).get("resourceid")) == resource_id for r in rows):
                return
        body = {"WebhookID": webhook_id, "ResourceID": resource_id}
        self._call("POST", f"TicketWebhooks/{webhook_id}/ExcludedResources", json=body)

    def _api_resource_id(self) -> int | None:
        for field in ("userName", "email"):
            rows = self._query("Resources", [_eq(field, self.username)], max_records=10)
            for row in rows:
                value = str(row.get(field) or "")
                if value.lower() == self.username.lower() and _int_or_none(row.get("id")):
                    return _int_or_none(row.get("id"))
        return None

    # --- setup checks ----------------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        """API user (zone), credentials, ticket access: stop at the first thing that fails."""
        checks: list[tuple[str, bool, str]] = []
        host = origin(self.configured_zone or ZONE_DISCOVERY_URL)[1]

        def unreachable(exc: AdapterError) -> bool:
            return isinstance(exc, Unavailable) and exc.status is None

        try:
            zone = self._zone(refresh=True)
        except AdapterError as exc:
            if unreachable(exc):
                checks.append(("Autotask", False, f"cannot reach {host}: check the network"))
            elif isinstance(exc, AuthenticationFailed):
                checks.append(("API user", False, UNKNOWN_USER.format(user=self.username)))
            else:
                checks.append(("API user", False, str(exc)))
            return ConnectionCheck(ok=False, checks=tuple(checks))
        host = origin(zone.url)[1]
        if self.configured_zone:
            checks.append(("API user", True, f"zone discovery skipped: Zone URL is {host}"))
        else:
            checks.append(("API user", True, f"Autotask knows {self.username} (zone {host})"))

        steps: list[tuple[str, Callable[[], str], str]] = [
            ("Credentials", self._threshold_words, CREDENTIALS_HELP),
            ("Ticket access", self._ticket_count_words, TICKETS_HELP),
        ]
        for what, probe, refused in steps:
            try:
                passed = probe()
            except AdapterError as exc:
                if unreachable(exc):
                    checks.append(("Autotask", False, f"cannot reach {host}: check Zone URL"))
                elif isinstance(exc, AuthenticationFailed) and exc.status != 401:
                    checks.append(("Integration code", False, INTEGRATION_CODE_HELP))
                elif isinstance(exc, AuthenticationFailed):
                    checks.append((what, False, CREDENTIALS_HELP))
                elif isinstance(exc, PermissionDenied):
                    checks.append((what, False, refused if what == "Ticket access" else str(exc)))
                else:
                    checks.append((what, False, str(exc)))
                break
            checks.append((what, True, passed))
        return ConnectionCheck(ok=all(c[1] for c in checks), checks=tuple(checks))

    def _threshold_words(self) -> str:
        info = _lower_keys(self._object(self._call("GET", "ThresholdInformation")))
        used, limit = info.get("currenttimeframerequestcount"), info.get("externalrequestthreshold")
        words = "the API user, Secret and Integration code were accepted"
        if isinstance(used, int) and isinstance(limit, int):
            words += f" ({used} of {limit} requests used this hour)"
        return words

    def _ticket_count_words(self) -> str:
        body = {"filter": [{"op": "gte", "field": "id", "value": 0}]}
        count = _lower_keys(self._object(self._call("POST", "Tickets/query/count", json=body)))
        return f"the API user can read tickets ({count.get('querycount', '?')} visible)"

    # --- webhooks --------------------------------------------------------------------------------

    @staticmethod
    def _payload(request: WebhookRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedWebhook("autotask webhook body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedWebhook("autotask webhook body is not a JSON object")
        return _lower_keys(body)

    def verify_webhook(self, request: WebhookRequest) -> None:
        """X-Hook-Signature: sha1=base64(HMAC-SHA1(secret, raw body)), over the RAW bytes.

        Every delivery must be signed, "Deactivated" notices included: an unsigned notice is
        refused like any other forgery, so it can never change security state. A signed one
        reaches parse_webhook, which only asks for the webhook to be re-checked.
        """
        if not self.webhook_secret:
            raise WebhookRejected("no webhook secret configured: install the webhook first")
        header = _header(request.headers, "x-hook-signature")
        if not header or not header.strip():
            raise WebhookRejected("missing X-Hook-Signature")
        signature = header.strip()
        if signature[:5].lower() == "sha1=":
            signature = signature[5:].strip()
        given = signature.encode("utf-8", "replace")
        if hmac.compare_digest(hook_signature(request.body, self.webhook_secret).encode(), given):
            return
        # Autotask escapes & < > ' + ` " and non-ASCII as \uXXXX; if something on the way
        # un-escaped them, the escaped text is what was signed. Still an HMAC with our key.
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        escaped = autotask_escape(text).encode("utf-8") if text else request.body
        if escaped != request.body and hmac.compare_digest(
            hook_signature(escaped, self.webhook_secret).encode(), given
        ):
            return
        raise WebhookRejected("signature mismatch")

    def parse_webhook(self, request: WebhookRequest) -> TicketEvent | Ignored:
        p = self._payload(request)
        action = str(p.get("action") or "").strip()
        guid = str(p.get("guid") or "").strip()
        entity_id = _int_or_none(p.get("id"))
        sequence = p.get("sequencenumber")
        sequence = str(sequence if sequence is not None else p.get("eventtime") or "")
        delivery_key = f"{guid}:{entity_id if entity_id is not None else ''}:{sequence}"
        query_event = _lower_keys(dict(request.query)).get("event")
        if action.lower() == "deactivated" or str(query_event or "").lower() == "deactivated":
            return Ignored(
                "webhook deactivated by Autotask", delivery_key=delivery_key, recheck_webhook=True
            )
        if not guid:
            raise MalformedWebhook("autotask webhook has no Guid")
        if entity_id is None:
            shown = str(p.get("id"))[:20]
            raise MalformedWebhook(f"autotask webhook has no numeric Id ({shown!r})")
        entity_type = str(p.get("entitytype") or "")
        if entity_type.lower() != "ticket":
            return Ignored(
                f"not a ticket webhook (EntityType={entity_type[:40]})", delivery_key=delivery_key
            )
        if action.lower() == "delete":
            return Ignored("ticket deleted", delivery_key=delivery_key)
        if action.lower() not in ("create", "update"):
            return Ignored(f"action {action[:40]!r} is not a change", delivery_key=delivery_key)
        fields = _lower_keys(p.get("fields"))
        status = fields.get("status")
        if status is None or isinstance(status, (dict, list, bool)) or not str(status).strip():
            return Ignored("status did not change", delivery_key=delivery_key)
        number = _int_or_none(status)
        person = p.get("personid")
        return TicketEvent(
            ticket_id=str(entity_id),
            delivery_key=delivery_key,
            status=str(number) if number is not None else str(status).strip(),
            title=str(fields.get("title") or ""),
            actor=str(person) if person is not None else "",
            ticket_number=str(fields.get("ticketnumber") or ""),
        )
