"""The sandbox PSA in Autotask's REST dialect (V1.0), firing signed ticket webhooks.

Mounted at a site root (see server.py): zone discovery at `/atservicesrest/V1.0/zoneInformation`
(unauthenticated) and the API under `/ATServicesRest/V1.0/`, checking the `ApiIntegrationCode`,
`UserName` and `Secret` headers with Autotask's status-code quirks. The records are the same
SandboxStore tickets the ConnectWise dialect serves, with the same ids; statuses become picklist
ids. A ticket whose status changes fires every active TicketWebhook subscribed to Status, unless
the change was made by one of the webhook's excluded resources, with a body serialised the way
Autotask does it (`& < > ' " + \\`` and non-ASCII escaped as \\uXXXX) and signed over those bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from adapters.sandbox.adapter import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
)
from adapters.sandbox.callbacks import ATTEMPTS, TIMEOUT_SECONDS, CallbackSender
from adapters.sandbox.store import (
    ESCALATED_STATUS,
    Delivery,
    Member,
    Note,
    NotInSandbox,
    SandboxStore,
    Ticket,
)

log = logging.getLogger(__name__)

API_ROOT = "/ATServicesRest/V1.0"
ZONE_PATHS = (
    "/atservicesrest/V1.0/zoneInformation",
    "/atservicesrest/v1.0/zoneInformation",
    "/ATServicesRest/V1.0/zoneInformation",
    "/ATServicesRest/V1.0/ZoneInformation",
)
# The store's status names as one Autotask "status" picklist (ids as in a default Autotask).
STATUS_IDS = {"New": 1, "In Progress": 8, "Waiting on Client": 7, ESCALATED_STATUS: 13,
              "Resolved": 5}  # fmt: skip
STATUS_NAMES = {v: k for k, v in STATUS_IDS.items()}
NOTE_TYPES = {1: "Summary", 2: "Detail", 3: "Notes", 13: "Workflow Rule Note"}
PUBLISH = {1: "All Autotask Users", 2: "Internal Users"}
PUBLISH_ALL, PUBLISH_INTERNAL = 1, 2
WORKFLOW_RULE_NOTE = 13
WORKFLOW_NOTE_BASE = 2_000_000_000  # + ticket id: one system note per ticket, never a person's
NOTE_MAX_CHARS = 32000
# TicketWebhookFields' fieldID picklist: id -> (label, key in the payload's Fields, ticket field)
WEBHOOK_FIELDS: dict[int, tuple[str, str, str]] = {
    4: ("Status", "Status", "status"),
    6: ("Title", "Title", "title"),
    9: ("Ticket Number", "TicketNumber", "ticketNumber"),
    10: ("Priority", "Priority", "priority"),
    11: ("Queue", "QueueID", "queueID"),
    12: ("Assigned Resource", "AssignedResourceID", "assignedResourceID"),
}
STATUS_FIELD_ID = 4
THREADS_PER_ENDPOINT = 3
MAX_RECORDS = 500
HOURLY_THRESHOLD = 10000
WEBHOOK_PATCHABLE = {
    "name", "isActive", "webhookUrl", "deactivationUrl", "secretKey", "notificationEmailAddress",
    "isSubscribedToCreateEvents", "isSubscribedToUpdateEvents", "isSubscribedToDeleteEvents",
    "sendThresholdExceededNotification",
}  # fmt: skip
_ESCAPED = set("\"&<>'+`")


class ATError(Exception):
    """An error answered in Autotask's body: {"errors": ["..."]}."""

    def __init__(self, status: int, *messages: str):
        super().__init__("; ".join(messages))
        self.status, self.messages = status, list(messages)


# --- Autotask's webhook serialisation and signature ----------------------------------------------


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\b\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[ch])
        elif ch in _ESCAPED or ord(ch) < 0x20 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")
            out += [f"\\u{units[i] << 8 | units[i + 1]:04X}" for i in range(0, len(units), 2)]
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def autotask_json(value: Any) -> str:
    """Compact JSON as Autotask's serialiser writes it (ASCII only, HTML characters escaped)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dict):
        members = (f"{_escape(str(k))}:{autotask_json(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(autotask_json(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def hook_signature(body: bytes, secret_key: str) -> str:
    """X-Hook-Signature: sha1= + base64(HMAC-SHA1(secret key, the body as sent))."""
    digest = hmac.new(secret_key.encode("utf-8"), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode("ascii")


class WebhookSender(CallbackSender):
    """The callback sender's queue and retries, with each body's own X-Hook-Signature."""

    def __init__(self, store: SandboxStore):
        super().__init__(store)
        self._signatures: dict[tuple[str, bytes], str] = {}
        self._signatures_lock = threading.Lock()

    def send_signed(self, url: str, body: bytes, secret_key: str) -> None:
        with self._signatures_lock:
            self._signatures[(url, body)] = hook_signature(body, secret_key)
        self.send(url, body)

    def _deliver(self, url: str, body: bytes) -> None:
        with self._signatures_lock:
            signature = self._signatures.pop((url, body), "")
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Hook-Signature": signature}  # fmt: skip
        for attempt in range(1, ATTEMPTS + 1):
            status, error = None, ""
            try:
                response = requests.post(
                    url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
                )
                status = response.status_code
            except requests.RequestException as exc:
                error = str(exc)
            self._store.record_delivery(Delivery(url, status, body, headers, attempt, error))
            if status is not None and 200 <= status < 300:
                return
            if attempt < ATTEMPTS:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        log.warning("sandbox autotask webhook to %s gave up after %d attempts", url, ATTEMPTS)


# --- state kept beside the store: webhooks, note titles, what the listener last saw --------------


@dataclass
class AutotaskState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhook_fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    excluded: dict[int, dict[str, Any]] = field(default_factory=dict)
    sequences: dict[int, int] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)  # ticket -> last status seen
    note_meta: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (title, noteType)
    in_flight: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    ids: Any = field(default_factory=lambda: itertools.count(117))


_STATES: weakref.WeakKeyDictionary[SandboxStore, AutotaskState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def autotask_state(store: SandboxStore) -> AutotaskState:
    """One Autotask state per store, shared by every app created over it."""
    with _STATES_LOCK:
        state = _STATES.get(store)
        if state is None:
            state = _STATES[store] = AutotaskState()
            state.statuses = {t.id: t.status for t in store.tickets()}
        return state


# --- rendering records as Autotask JSON ----------------------------------------------------------


def _members(store: SandboxStore) -> list[Member]:
    """Every member: the store numbers them from 100 without gaps."""
    found: list[Member] = []
    for member_id in itertools.count(100):
        member = store.member_by_id(member_id)
        if member is None:
            return found
        found.append(member)
    return found


def _contacts(store: SandboxStore) -> dict[int, tuple[str, str]]:
    """contact id -> (name, email), for ticket contacts and the contacts who wrote notes."""
    contacts: dict[int, tuple[str, str]] = {}
    for t in store.tickets():
        for n in store.notes(t.id):
            if "@" in n.author:
                cid = store.stable_id("contact", n.author, 1000)
                contacts.setdefault(cid, (n.author.split("@")[0], n.author))
        if t.contact_email:
            cid = store.stable_id("contact", t.contact_email, 1000)
            contacts[cid] = (t.contact_name, t.contact_email)
    return contacts


def _config_types(store: SandboxStore) -> dict[str, int]:
    names = {c.type for t in store.tickets() for c in store.configurations(t.id) if c.type}
    return {name: i for i, name in enumerate(sorted(names), start=1)}


def ticket_number(t: Ticket) -> str:
    return f"T{t.created[:10].replace('-', '')}.{t.id % 10000:04d}"


def _member_id(store: SandboxStore, identifier: str) -> int | None:
    member = store.member(identifier) if identifier and "@" not in identifier else None
    return member.id if member else None


def ticket_json(store: SandboxStore, t: Ticket) -> dict[str, Any]:
    notes = store.notes(t.id)
    configs = store.configurations(t.id)
    return {
        "id": t.id,
        "ticketNumber": ticket_number(t),
        "title": t.summary,
        "description": notes[0].text if notes else "",
        "status": STATUS_IDS[t.status],
        "priority": store.stable_id("priority", t.priority, 1),
        "queueID": store.board(t.board).id,
        "companyID": store.stable_id("company", t.company, 250),
        "contactID": store.stable_id("contact", t.contact_email, 1000) if t.contact_email else None,
        "assignedResourceID": _member_id(store, t.escalated_by),
        "assignedResourceRoleID": None,
        "configurationItemID": configs[0].id if configs else None,
        "ticketType": 1,
        "source": 2,
        "createDate": t.created,
        "lastActivityDate": t.updated,
        "lastActivityResourceID": _member_id(store, t.updated_by),
        "completedDate": t.updated if t.status == "Resolved" else None,
        "dueDateTime": None,
    }


def note_json(store: SandboxStore, state: AutotaskState, n: Note) -> dict[str, Any]:
    title, note_type = state.note_meta.get(n.id, ("", 3 if n.internal else 1))
    contact = "@" in n.author
    return {
        "id": n.id,
        "ticketID": n.ticket_id,
        "title": title,
        "description": n.text,
        "noteType": note_type,
        "publish": PUBLISH_INTERNAL if n.internal else PUBLISH_ALL,
        "createDateTime": n.created,
        "lastActivityDate": n.created,
        "creatorResourceID": None if contact else _member_id(store, n.author),
        "createdByContactID": store.stable_id("contact", n.author, 1000) if contact else None,
        "impersonatorCreatorResourceID": None,
        "impersonatorUpdaterResourceID": None,
    }


def workflow_note_json(t: Ticket) -> dict[str, Any]:
    """What a workflow rule leaves on a new ticket: a system note Baton must not read."""
    return {
        "id": WORKFLOW_NOTE_BASE + t.id, "ticketID": t.id, "title": "Workflow rule",
        "description": f"Workflow rule 'New ticket in {t.board}' notified the queue.",
        "noteType": WORKFLOW_RULE_NOTE, "publish": PUBLISH_ALL, "createDateTime": t.created,
        "lastActivityDate": t.created, "creatorResourceID": None, "createdByContactID": None,
        "impersonatorCreatorResourceID": None, "impersonatorUpdaterResourceID": None,
    }  # fmt: skip


def resource_json(store: SandboxStore, m: Member) -> dict[str, Any]:
    api = m.identifier == store.api_member
    return {
        "id": m.id, "firstName": m.first_name, "lastName": m.last_name,
        "email": SANDBOX_AUTOTASK_USERNAME if api else m.email,
        "userName": SANDBOX_AUTOTASK_USERNAME if api else m.identifier,
        "isActive": True, "resourceType": "Employee", "licenseType": 7 if api else 1,
    }  # fmt: skip


def _plus_minutes(start: str, minutes: int) -> str:
    moment = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _picklist(values: list[tuple[Any, str]], *, active: bool = True) -> list[dict[str, Any]]:
    return [
        {"value": str(value), "label": label, "isDefaultValue": False, "sortOrder": order,
         "parentValue": "", "isActive": active, "isSystem": True}
        for order, (value, label) in enumerate(values, start=1)
    ]  # fmt: skip


def _field(name: str, kind: str = "string", picklist: list[dict] | None = None) -> dict[str, Any]:
    return {
        "name": name, "dataType": kind, "length": 0, "isRequired": name == "id",
        "isReadOnly": name == "id", "isQueryable": True, "isReference": False,
        "referenceEntityType": "", "isPickList": picklist is not None,
        "picklistValues": picklist, "picklistParentValueField": "",
        "isSupportedWebhookField": name in {f[2] for f in WEBHOOK_FIELDS.values()},
    }  # fmt: skip


# --- the filter language -------------------------------------------------------------------------


def _lookup(record: dict[str, Any], name: str) -> tuple[bool, Any]:
    for key, value in record.items():
        if key.lower() == name.lower():
            return True, value
    return False, None


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any]:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual, expected
    if isinstance(actual, int | float) and isinstance(expected, str):
        try:
            return actual, float(expected)
        except ValueError:
            return str(actual), expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower(), expected.lower()
    return actual, expected


def holds(record: dict[str, Any], condition: Any) -> bool:
    """One Autotask query condition: {"op", "field", "value"} or {"op": "and"|"or", "items"}."""
    if not isinstance(condition, dict):
        raise ATError(500, "Each filter must be an object with op, field and value.")
    c = {str(k).lower(): v for k, v in condition.items()}
    op = str(c.get("op") or "").lower()
    if op in ("and", "or"):
        items = c.get("items")
        if not isinstance(items, list) or not items:
            raise ATError(500, f"The '{op}' grouping needs items.")
        results = [holds(record, item) for item in items]
        return all(results) if op == "and" else any(results)
    name = str(c.get("field") or "")
    found, actual = _lookup(record, name)
    if not found:
        raise ATError(500, f"Unable to find {name or 'a field'} in the entity.")
    expected = c.get("value")
    if op == "exist":
        return actual not in (None, "")
    if op == "notexist":
        return actual in (None, "")
    if op in ("in", "notin"):
        if not isinstance(expected, list):
            raise ATError(500, f"The '{op}' operator needs a list of values.")
        inside = any(_comparable(actual, v)[0] == _comparable(actual, v)[1] for v in expected)
        return inside == (op == "in")
    if actual is None:
        return op == "noteq" and expected is not None
    a, e = _comparable(actual, expected)
    if op in ("contains", "beginswith", "endswith"):
        text, wanted = str(actual).lower(), str(expected).lower()
        return {"contains": wanted in text, "beginswith": text.startswith(wanted),
                "endswith": text.endswith(wanted)}[op]  # fmt: skip
    compare = {"eq": lambda: a == e, "noteq": lambda: a != e, "gt": lambda: a > e,
               "gte": lambda: a >= e, "lt": lambda: a < e, "lte": lambda: a <= e}  # fmt: skip
    if op not in compare:
        raise ATError(500, f"Unknown operator '{op}'.")
    try:
        return bool(compare[op]())
    except TypeError:
        return False


# --- the app -------------------------------------------------------------------------------------


def create_autotask_app(store: SandboxStore, *, public_base: str) -> Flask:
    """The Autotask dialect; `public_base` is the URL this app is reachable at (its site root)."""
    public_base = public_base.rstrip("/")
    zone_url = public_base + "/ATServicesRest/"
    api_base = public_base + API_ROOT
    state = autotask_state(store)
    sender = WebhookSender(store)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = Blueprint("at_api", __name__, url_prefix=API_ROOT)

    @app.errorhandler(ATError)
    def at_error(exc: ATError) -> tuple[Response, int]:
        return jsonify(errors=exc.messages), exc.status

    @app.errorhandler(NotInSandbox)
    def not_found(exc: NotInSandbox) -> tuple[Response, int]:
        return at_error(ATError(404, f"{str(exc).capitalize()} was not found."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return at_error(ATError(exc.code or 500, exc.description or exc.name))

    # --- zone discovery: no credentials ----------------------------------------------------------

    def zone_information() -> Response:
        if request.args.get("user", "").strip().lower() != SANDBOX_AUTOTASK_USERNAME:
            raise ATError(500, "Zone information could not be determined")
        return jsonify(zoneName="Sandbox", url=zone_url, webUrl=public_base + "/", ci=0)

    for rule in ZONE_PATHS:
        app.add_url_rule(rule, view_func=zone_information, endpoint=rule)

    # --- authentication and the thread limit -----------------------------------------------------

    @api.before_request
    def authenticate() -> None:
        # Autotask's quirks: an unknown user or a wrong integration code is a 500,
        # a wrong secret a 401.
        user = request.headers.get("UserName", "")
        if user.strip().lower() != SANDBOX_AUTOTASK_USERNAME:
            raise ATError(500, "Unable to authenticate the user name.")
        code = request.headers.get("ApiIntegrationCode", "").encode()
        if not hmac.compare_digest(code, SANDBOX_AUTOTASK_INTEGRATION_CODE.encode()):
            raise ATError(500, "IntegrationCode is invalid.")
        secret = request.headers.get("Secret", "").encode()
        if not hmac.compare_digest(secret, SANDBOX_AUTOTASK_SECRET.encode()):
            raise ATError(401, "Authorization has been denied for this request.")
        endpoint = request.path[len(API_ROOT) + 1 :].split("/", 1)[0].lower()
        with state.lock:
            state.requests += 1
            if state.in_flight.get(endpoint, 0) >= THREADS_PER_ENDPOINT:
                raise ATError(
                    500,
                    "Thread Threshold Exceeded: The Autotask API thread threshold of "
                    f"{THREADS_PER_ENDPOINT} threads has been exceeded. (Itgenatr005)",
                )
            state.in_flight[endpoint] = state.in_flight.get(endpoint, 0) + 1
        g.at_endpoint = endpoint
        g.member = store.member(store.api_member)

    @app.teardown_request
    def release(_exc: BaseException | None) -> None:
        endpoint = g.pop("at_endpoint", None)
        if endpoint is not None:
            with state.lock:
                state.in_flight[endpoint] -= 1

    def body_object() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ATError(500, "The request body must be a JSON object.")
        return {str(k).lower(): v for k, v in body.items()}

    # --- collections -----------------------------------------------------------------------------

    def notes_of(ticket_id: int) -> list[dict[str, Any]]:
        t = store.ticket(ticket_id)
        with state.lock:
            rows = [note_json(store, state, n) for n in store.notes(ticket_id)[1:]]
        return [workflow_note_json(t), *rows]

    def time_json() -> list[dict[str, Any]]:
        return [
            {"id": e.id, "ticketID": e.ticket_id, "resourceID": _member_id(store, e.member),
             "dateWorked": e.start[:10] + "T00:00:00Z", "startDateTime": e.start,
             "endDateTime": _plus_minutes(e.start, e.minutes),
             "hoursWorked": round(e.minutes / 60, 4), "summaryNotes": e.notes,
             "internalNotes": "", "taskID": None, "roleID": None}
            for e in store.time_entries()
        ]  # fmt: skip

    def configurations_json() -> list[dict[str, Any]]:
        types = _config_types(store)
        seen: dict[int, dict[str, Any]] = {}
        for t in store.tickets():
            for c in store.configurations(t.id):
                seen[c.id] = {
                    "id": c.id, "referenceTitle": c.name, "referenceNumber": None,
                    "serialNumber": c.serial or None,
                    "rmmDeviceAuditOperatingSystem": c.os or None,
                    "rmmDeviceAuditIPAddress": c.ip or None, "rmmDeviceAuditHostname": None,
                    "companyID": store.stable_id("company", c.company, 250),
                    "configurationItemType": types.get(c.type), "isActive": True,
                    "productID": None,
                }  # fmt: skip
        return sorted(seen.values(), key=lambda c: c["id"])

    def additional_configurations() -> list[dict[str, Any]]:
        return [
            {"id": c.id * 10 + 1, "ticketID": t.id, "configurationItemID": c.id}
            for t in store.tickets()
            for c in store.configurations(t.id)[1:]
        ]

    def public_webhook(w: dict[str, Any]) -> dict[str, Any]:
        return {**w, "secretKey": None}  # a webhook's secret is never shown again

    def collection(entity: str) -> list[dict[str, Any]]:
        name = entity.lower()
        if name == "tickets":
            return [ticket_json(store, t) for t in store.tickets()]
        if name == "ticketnotes":
            return [row for t in store.tickets() for row in notes_of(t.id)]
        if name == "timeentries":
            return time_json()
        if name == "resources":
            return [resource_json(store, m) for m in _members(store)]
        if name == "contacts":
            return [
                {"id": cid, "firstName": n.split(" ")[0], "lastName": " ".join(n.split(" ")[1:]),
                 "emailAddress": email, "isActive": 1}
                for cid, (n, email) in sorted(_contacts(store).items())
            ]  # fmt: skip
        if name == "companies":
            names = {t.company for t in store.tickets()}
            return sorted(
                ({"id": store.stable_id("company", n, 250), "companyName": n, "isActive": True}
                 for n in names), key=lambda c: c["id"],
            )  # fmt: skip
        if name == "configurationitems":
            return configurations_json()
        if name == "ticketadditionalconfigurationitems":
            return additional_configurations()
        with state.lock:
            if name == "ticketwebhooks":
                return [public_webhook(w) for w in state.webhooks.values()]
            if name == "ticketwebhookfields":
                return [dict(f) for f in state.webhook_fields.values()]
            if name == "ticketwebhookexcludedresources":
                return [dict(r) for r in state.excluded.values()]
        raise ATError(404, f"No HTTP resource was found for '{entity}'.")

    def entity_fields(entity: str) -> list[dict[str, Any]]:
        name = entity.lower()
        if name == "tickets":
            priorities = sorted({(store.stable_id("priority", t.priority, 1), t.priority)
                                 for t in store.tickets()})  # fmt: skip
            queues = [(b.id, b.name) for b in store.boards()]
            statuses = [(STATUS_IDS[s], s) for s in STATUS_IDS]
            sample = ticket_json(store, store.tickets()[0])
            special = {"status": statuses, "priority": priorities, "queueID": queues}
            return [
                _field(k, "integer", _picklist(special[k])) if k in special else _field(k)
                for k in sample
            ]
        if name == "ticketnotes":
            special = {"noteType": list(NOTE_TYPES.items()), "publish": list(PUBLISH.items())}
            sample = workflow_note_json(store.tickets()[0])
            return [
                _field(k, "integer", _picklist(special[k])) if k in special else _field(k)
                for k in sample
            ]
        if name == "configurationitems":
            types = [(i, n) for n, i in _config_types(store).items()]
            return [_field("id", "long"), _field("referenceTitle"),
                    _field("configurationItemType", "integer", _picklist(types))]  # fmt: skip
        if name == "ticketwebhookfields":
            picks = [(fid, label) for fid, (label, _, _) in WEBHOOK_FIELDS.items()]
            return [_field("id", "long"), _field("webhookID", "long"),
                    _field("fieldID", "integer", _picklist(picks)),
                    _field("isSubscribedField", "boolean"),
                    _field("isDisplayAlwaysField", "boolean")]  # fmt: skip
        rows = collection(entity)
        return [_field(k) for k in (rows[0] if rows else {"id": 0})]

    # --- queries ---------------------------------------------------------------------------------

    def search_of(body_allowed: bool) -> dict[str, Any]:
        if "search" in request.args:
            try:
                search = json.loads(request.args["search"])
            except ValueError:
                raise ATError(500, "The search parameter is not valid JSON.") from None
        elif body_allowed and request.method == "POST":
            search = request.get_json(silent=True)
        else:
            search = None
        if not isinstance(search, dict):
            raise ATError(500, "A query needs a search object with a filter.")
        lowered = {str(k).lower(): v for k, v in search.items()}
        if not isinstance(lowered.get("filter"), list) or not lowered["filter"]:
            raise ATError(500, "A query needs at least one filter.")
        return lowered

    def matching(entity: str, search: dict[str, Any]) -> list[dict[str, Any]]:
        rows = collection(entity)
        return [r for r in rows if all(holds(r, c) for c in search["filter"])]

    def page_url(entity: str, search: dict[str, Any], offset: int) -> str:
        paging = quote(json.dumps({"offset": offset}, separators=(",", ":")))
        query = quote(json.dumps(search, separators=(",", ":")))
        return f"{api_base}/{entity}/query/next?paging={paging}&search={query}"

    def query_page(entity: str, search: dict[str, Any], offset: int) -> Response:
        rows = matching(entity, search)
        try:
            size = max(1, min(int(search.get("maxrecords") or MAX_RECORDS), MAX_RECORDS))
        except (TypeError, ValueError):
            raise ATError(500, "MaxRecords must be a number between 1 and 500.") from None
        page = rows[offset : offset + size]
        include = search.get("includefields")
        if isinstance(include, list) and include:
            wanted = {str(f).lower() for f in include} | {"id"}
            page = [{k: v for k, v in r.items() if k.lower() in wanted} for r in page]
        return jsonify(
            items=page,
            pageDetails={
                "count": len(page),
                "requestCount": size,
                "prevPageUrl": page_url(entity, search, max(0, offset - size)) if offset else None,
                "nextPageUrl": (
                    page_url(entity, search, offset + size) if offset + size < len(rows) else None
                ),
            },
        )

    @api.route("/<entity>/query", methods=["GET", "POST"])
    def query(entity: str) -> Response:
        return query_page(entity, search_of(True), 0)

    @api.route("/<entity>/query/next", methods=["GET", "POST"])
    def query_next(entity: str) -> Response:
        try:
            offset = int(json.loads(request.args.get("paging", "{}")).get("offset", 0))
        except (ValueError, AttributeError, TypeError):
            raise ATError(500, "The paging parameter is not valid.") from None
        return query_page(entity, search_of(True), max(0, offset))

    @api.route("/<entity>/query/count", methods=["GET", "POST"])
    def query_count(entity: str) -> Response:
        return jsonify(queryCount=len(matching(entity, search_of(True))))

    @api.get("/<entity>/<int:item_id>")
    def item(entity: str, item_id: int) -> Response:
        found = next((r for r in collection(entity) if r.get("id") == item_id), None)
        return jsonify(item=found)

    @api.get("/<entity>/entityInformation/fields")
    def fields(entity: str) -> Response:
        return jsonify(fields=entity_fields(entity))

    @api.get("/ThresholdInformation")
    def threshold() -> Response:
        with state.lock:
            used = state.requests
        return jsonify(externalRequestThreshold=HOURLY_THRESHOLD, requestThresholdTimeframe=60,
                       currentTimeframeRequestCount=used)  # fmt: skip

    # --- tickets and notes -----------------------------------------------------------------------

    @api.patch("/Tickets")
    def patch_ticket() -> Response:
        body = body_object()
        ticket_id = body.pop("id", None)
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
            raise ATError(500, "The id of the ticket to update is required.")
        try:
            store.ticket(ticket_id)
        except NotInSandbox:
            raise ATError(500, "No matching records found.") from None
        if set(body) - {"status"}:
            raise ATError(500, "The sandbox updates only a ticket's status.")
        if "status" in body:
            name = STATUS_NAMES.get(body["status"]) if isinstance(body["status"], int) else None
            if name is None:
                raise ATError(500, f"Value {body['status']!r} is not valid for field status.")
            store.set_status(ticket_id, name, actor=g.member.identifier)
        return jsonify(itemId=ticket_id)

    @api.get("/Tickets/<int:ticket_id>/Notes")
    def child_notes(ticket_id: int) -> Response:
        search = {"filter": [{"op": "eq", "field": "ticketID", "value": ticket_id}]}
        store.ticket(ticket_id)
        return query_page("TicketNotes", search, 0)

    @api.get("/Tickets/<int:ticket_id>/Notes/<int:note_id>")
    def child_note(ticket_id: int, note_id: int) -> Response:
        found = next((n for n in notes_of(ticket_id) if n["id"] == note_id), None)
        return jsonify(item=found)

    @api.post("/Tickets/<int:ticket_id>/Notes")
    def add_note(ticket_id: int) -> Response:
        body = body_object()
        store.ticket(ticket_id)
        if body.get("ticketid") not in (None, ticket_id):
            raise ATError(500, "ticketID does not match the parent ticket.")
        text = body.get("description")
        if not isinstance(text, str) or not text.strip():
            raise ATError(500, "description is required.")
        if len(text) > NOTE_MAX_CHARS:
            raise ATError(500, f"description is longer than {NOTE_MAX_CHARS} characters.")
        note_type, publish = body.get("notetype"), body.get("publish")
        if note_type not in NOTE_TYPES or note_type == WORKFLOW_RULE_NOTE:
            raise ATError(500, f"Value {note_type!r} is not valid for field noteType.")
        if publish not in PUBLISH:
            raise ATError(500, f"Value {publish!r} is not valid for field publish.")
        title = str(body.get("title") or "")[:250]
        with state.lock:  # the title is known before anyone can read the note
            note = store.add_note(
                ticket_id, text, author=g.member.identifier,
                detail=publish == PUBLISH_ALL, internal=publish == PUBLISH_INTERNAL,
            )  # fmt: skip
            state.note_meta[note.id] = (title, note_type)
        return jsonify(itemId=note.id)

    # --- ticket webhooks -------------------------------------------------------------------------

    def check_url(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ATError(500, f"{what} must be an http(s) URL.")
        if len(value) > 500:
            raise ATError(500, f"{what} is longer than 500 characters.")
        return value

    def webhook(webhook_id: int) -> dict[str, Any]:
        if webhook_id not in state.webhooks:
            raise ATError(500, "No matching records found.")
        return state.webhooks[webhook_id]

    @api.post("/TicketWebhooks")
    def add_webhook() -> Response:
        body = body_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 50:
            raise ATError(500, "Name is required and at most 50 characters.")
        secret_key = body.get("secretkey")
        if not isinstance(secret_key, str) or not secret_key or len(secret_key) > 64:
            raise ATError(500, "SecretKey is required and at most 64 characters.")
        record = {
            "name": name,
            "isActive": bool(body.get("isactive")),
            "isReady": False,
            "webhookUrl": check_url(body.get("webhookurl"), "WebhookUrl"),
            "deactivationUrl": check_url(body.get("deactivationurl"), "DeactivationUrl"),
            "secretKey": secret_key,
            "isSubscribedToCreateEvents": bool(body.get("issubscribedtocreateevents")),
            "isSubscribedToUpdateEvents": bool(body.get("issubscribedtoupdateevents")),
            "isSubscribedToDeleteEvents": bool(body.get("issubscribedtodeleteevents")),
            "notificationEmailAddress": body.get("notificationemailaddress"),
            "sendThresholdExceededNotification": bool(
                body.get("sendthresholdexceedednotification")
            ),
            "webhookGUID": str(uuid.uuid4()),
            "ownerResourceID": g.member.id,
        }
        with state.lock:
            webhook_id = next(state.ids)
            state.webhooks[webhook_id] = {"id": webhook_id, **record}
        return jsonify(itemId=webhook_id)

    @api.patch("/TicketWebhooks")
    def patch_webhook() -> Response:
        body = body_object()
        webhook_id = body.pop("id", None)
        known = {k.lower(): k for k in WEBHOOK_PATCHABLE}
        if fixed := sorted(set(body) - set(known)):
            raise ATError(500, f"{fixed[0]} cannot be updated.")
        for url_field in ("webhookurl", "deactivationurl"):
            if url_field in body:
                check_url(body[url_field], known[url_field])
        if "secretkey" in body and not (
            isinstance(body["secretkey"], str) and 0 < len(body["secretkey"]) <= 64
        ):
            raise ATError(500, "SecretKey is required and at most 64 characters.")
        with state.lock:
            current = webhook(webhook_id if isinstance(webhook_id, int) else -1)
            was_active = current["isActive"]
            current.update({known[k]: v for k, v in body.items()})
            turned_off = was_active and not current["isActive"]
            snapshot = dict(current)
        if turned_off:
            deactivated(snapshot)
        return jsonify(itemId=webhook_id)

    @api.delete("/TicketWebhooks/<int:webhook_id>")
    def delete_webhook(webhook_id: int) -> Response:
        with state.lock:
            snapshot = dict(webhook(webhook_id))
            del state.webhooks[webhook_id]
            for table in (state.webhook_fields, state.excluded):
                for row_id in [i for i, r in table.items() if r["webhookID"] == webhook_id]:
                    del table[row_id]
        if snapshot["isActive"]:
            deactivated(snapshot)
        return jsonify(itemId=webhook_id)

    @api.post("/TicketWebhooks/<int:webhook_id>/Fields")
    def add_webhook_field(webhook_id: int) -> Response:
        body = body_object()
        field_id = body.get("fieldid")
        if field_id not in WEBHOOK_FIELDS:
            raise ATError(500, f"Value {field_id!r} is not valid for field fieldID.")
        with state.lock:
            hook = webhook(webhook_id)
            if any(f["webhookID"] == webhook_id and f["fieldID"] == field_id
                   for f in state.webhook_fields.values()):  # fmt: skip
                raise ATError(500, "This field is already added to the webhook.")
            row_id = next(state.ids)
            subscribed = bool(body.get("issubscribedfield"))
            state.webhook_fields[row_id] = {
                "id": row_id, "webhookID": webhook_id, "fieldID": field_id,
                "isSubscribedField": subscribed,
                "isDisplayAlwaysField": bool(body.get("isdisplayalwaysfield")),
            }  # fmt: skip
            hook["isReady"] = hook["isReady"] or subscribed
        return jsonify(itemId=row_id)

    @api.post("/TicketWebhooks/<int:webhook_id>/ExcludedResources")
    def add_excluded_resource(webhook_id: int) -> Response:
        body = body_object()
        resource_id = body.get("resourceid")
        if not isinstance(resource_id, int) or store.member_by_id(resource_id) is None:
            raise ATError(500, f"Value {resource_id!r} is not valid for field resourceID.")
        with state.lock:
            webhook(webhook_id)
            if any(r["webhookID"] == webhook_id and r["resourceID"] == resource_id
                   for r in state.excluded.values()):  # fmt: skip
                raise ATError(500, "This resource is already excluded from the webhook.")
            row_id = next(state.ids)
            state.excluded[row_id] = {"id": row_id, "webhookID": webhook_id,
                                      "resourceID": resource_id}  # fmt: skip
        return jsonify(itemId=row_id)

    app.register_blueprint(api)

    # --- firing webhooks -------------------------------------------------------------------------

    def event_time() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def next_sequence(webhook_id: int) -> int:
        with state.lock:
            state.sequences[webhook_id] = state.sequences.get(webhook_id, 0) + 1
            return state.sequences[webhook_id]

    def deactivated(hook: dict[str, Any]) -> None:
        """Autotask calls the DeactivationUrl when a webhook is turned off or deleted."""
        payload = {"Action": "Deactivated", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
                   "Id": hook["id"], "EventTime": event_time(),
                   "SequenceNumber": next_sequence(hook["id"])}  # fmt: skip
        body = autotask_json(payload).encode("ascii")
        sender.send_signed(hook["deactivationUrl"], body, hook["secretKey"])

    def fire(kind: str, ticket_id: int, actor: str) -> None:
        if kind != "status":
            return  # notes are another entity: a TicketWebhook does not hear about them
        t = store.ticket(ticket_id)
        with state.lock:
            before = state.statuses.get(ticket_id)
            state.statuses[ticket_id] = t.status
            if before == t.status:
                return  # Autotask fires for a change of a subscribed field, not for any save
            hooks = [dict(w) for _, w in sorted(state.webhooks.items()) if w["isActive"]]
            if not hooks:
                return
            fields = [dict(f) for f in state.webhook_fields.values()]
            excluded = [dict(r) for r in state.excluded.values()]
        person = _member_id(store, actor)
        rendered = ticket_json(store, t)
        sent: set[str] = set()
        for hook in hooks:
            mine = [f for f in fields if f["webhookID"] == hook["id"]]
            subscribed = {f["fieldID"] for f in mine if f["isSubscribedField"]}
            if not (hook["isActive"] and hook["isSubscribedToUpdateEvents"]):
                continue
            if STATUS_FIELD_ID not in subscribed:
                continue
            if person is not None and any(
                r["webhookID"] == hook["id"] and r["resourceID"] == person for r in excluded
            ):
                continue  # the change was made by an excluded resource
            if hook["webhookUrl"] in sent:
                continue  # Autotask sends one callout per entity and URL
            sent.add(hook["webhookUrl"])
            shown = {STATUS_FIELD_ID} | {f["fieldID"] for f in mine if f["isDisplayAlwaysField"]}
            payload_fields = {
                WEBHOOK_FIELDS[fid][1]: rendered[WEBHOOK_FIELDS[fid][2]] for fid in sorted(shown)
            }
            payload = {"Action": "Update", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
                       "Id": ticket_id, "Fields": payload_fields, "EventTime": event_time(),
                       "SequenceNumber": next_sequence(hook["id"]), "PersonID": person}  # fmt: skip
            body = autotask_json(payload).encode("ascii")
            sender.send_signed(hook["webhookUrl"], body, hook["secretKey"])

    store.set_listener("autotask", fire)
    return app


def sandbox_webhooks(store: SandboxStore) -> list[dict[str, Any]]:
    """The store's TicketWebhooks with their secrets (for tests and the demo)."""
    state = autotask_state(store)
    with state.lock:
        return [dict(w) for w in state.webhooks.values()]
