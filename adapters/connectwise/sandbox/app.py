"""The sandbox PSA in the ConnectWise PSA (Manage) REST dialect, codebase v2025_1.

Mounted at a site root (see server.py): `/login/companyinfo/<company>`, the unauthenticated
callback signing-key URL, and the authenticated API under `/v2025_1/apis/3.0/`. Ticket
changes fire signed ticket callbacks to every registered CallbackEntry, like ConnectWise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from adapters.connectwise.sandbox.query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    matches,
    parse_conditions,
)
from adapters.sandbox.callbacks import CallbackSender
from adapters.sandbox.store import Member, Note, NotInSandbox, SandboxStore, Ticket, now_iso

CODEBASE = "v2025_1/"
API_ROOT = "/v2025_1/apis/3.0"
CALLBACK_TYPES = {
    "ticket", "project", "company", "contact", "opportunity", "activity", "schedule",
    "agreement", "configuration", "time", "member", "invoice", "purchaseorder", "expense",
    "productcatalog",
}  # fmt: skip
CALLBACK_PATCHABLE = {
    "description", "url", "objectId", "type", "level", "inactiveFlag", "isSelfSuppressedFlag",
    "payloadVersion",
}  # fmt: skip


class CWError(Exception):
    """An error answered in ConnectWise's body: {"code", "message", "errors"?}."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    @classmethod
    def invalid_field(cls, resource: str, field: str, message: str) -> CWError:
        error = {"code": "InvalidField", "message": message, "resource": resource, "field": field}
        return cls(400, "InvalidObject", f"{resource} object is invalid", [error])


def sandbox_member_hash(store: SandboxStore, member_id: str) -> str:
    """The memberHash the Hosted API's getMemberAuthentication would hand this member."""
    return hmac.new(store.member_secret, member_id.lower().encode(), hashlib.sha256).hexdigest()


# --- rendering records as ConnectWise JSON ---------------------------------------------------


def _identifier(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum())[:25]


def _member_ref(store: SandboxStore, identifier: str) -> dict[str, Any]:
    member = store.member(identifier)
    if member is None:
        return {"identifier": identifier, "name": identifier}
    return {"id": member.id, "identifier": member.identifier, "name": member.name}


def _company_ref(store: SandboxStore, company: str) -> dict[str, Any]:
    return {"id": store.stable_id("company", company, 250), "identifier": _identifier(company),
            "name": company}  # fmt: skip


def ticket_json(store: SandboxStore, t: Ticket) -> dict[str, Any]:
    board = store.board(t.board)
    return {
        "id": t.id,
        "summary": t.summary,
        "recordType": "ServiceTicket",
        "board": {"id": board.id, "name": board.name},
        "status": {"id": board.status_id(t.status), "name": t.status},
        "company": _company_ref(store, t.company),
        "contact": {
            "id": store.stable_id("contact", t.contact_email, 1000),
            "name": t.contact_name,
        },
        "contactEmailAddress": t.contact_email,
        "type": {"name": t.type},
        "subType": {"name": t.subtype},
        "priority": {"id": store.stable_id("priority", t.priority, 1), "name": t.priority},
        "closedFlag": t.status == "Resolved",
        "_info": {"lastUpdated": t.updated, "updatedBy": t.updated_by, "dateEntered": t.created},
    }


def note_json(store: SandboxStore, n: Note, *, all_notes: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": n.id,
        "ticketId": n.ticket_id,
        "text": n.text,
        "detailDescriptionFlag": n.detail,
        "internalAnalysisFlag": n.internal,
        "resolutionFlag": n.resolution,
        "issueFlag": False,
        "internalFlag": n.internal,
        "externalFlag": n.detail or n.resolution,
    }
    if "@" in n.author:  # written by the client's contact
        ticket = store.ticket(n.ticket_id)
        same = n.author.lower() == ticket.contact_email.lower()
        name = ticket.contact_name if same else n.author.split("@")[0]
        data["contact"] = {"id": store.stable_id("contact", n.author, 1000), "name": name}
    else:
        data["member"] = _member_ref(store, n.author)
    data.update(dateCreated=n.created, createdBy=n.author)
    data["_info"] = {"lastUpdated": n.created, "updatedBy": n.author}
    if all_notes:
        data["noteType"] = "TicketNote"
    return data


def member_json(m: Member) -> dict[str, Any]:
    return {"id": m.id, "identifier": m.identifier, "firstName": m.first_name,
            "lastName": m.last_name, "emailAddress": m.email, "primaryEmail": m.email}  # fmt: skip


def _principal(store: SandboxStore) -> Member | None:
    """Who the Basic credentials name: the API member (keys) or a member (memberHash)."""
    auth = request.authorization
    if not auth or auth.type != "basic" or "+" not in (auth.username or ""):
        return None
    company, user = (auth.username or "").split("+", 1)
    secret = (auth.password or "").encode()
    if company.lower() != store.company:
        return None
    if user == store.public_key:
        ok = hmac.compare_digest(secret, store.private_key.encode())
        return store.member(store.api_member) if ok else None
    member = store.member(user)
    if member and hmac.compare_digest(secret, sandbox_member_hash(store, user).encode()):
        return member
    return None


# --- the app ----------------------------------------------------------------------------------


def create_connectwise_app(store: SandboxStore, *, public_base: str) -> Flask:
    """The ConnectWise dialect; `public_base` is the URL this app is reachable at (the site)."""
    public_base = public_base.rstrip("/")
    key_url = (
        f"{public_base}/{CODEBASE}/system/callbackkey/index.rails"
        f"?companyName={store.company}&id={store.signing_key_id}"
    )  # the double slash after the codebase is what real ConnectWise sends
    sender = CallbackSender(store)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = Blueprint("cw_api", __name__, url_prefix=API_ROOT)

    @app.errorhandler(CWError)
    def cw_error(exc: CWError) -> tuple[Response, int]:
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.errors:
            body["errors"] = exc.errors
        return jsonify(body), exc.status

    @app.errorhandler(NotInSandbox)
    def not_found(exc: NotInSandbox) -> tuple[Response, int]:
        return cw_error(CWError(404, "NotFound", f"{str(exc).capitalize()} not found"))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        codes = {400: "InvalidObject", 404: "NotFound", 405: "MethodNotAllowed"}
        status = exc.code or 500
        return cw_error(CWError(status, codes.get(status, "ConnectWiseApi"), exc.description or ""))

    # --- unauthenticated -----------------------------------------------------------------

    @app.get("/login/companyinfo/<company>")
    def company_info(company: str) -> Response:
        if company.lower() != store.company:
            return jsonify(None)
        return jsonify(Codebase=CODEBASE, VersionCode="v2025.1", CompanyID=company, IsCloud=False)

    def signing_key() -> Response:
        company, key_id = request.args.get("companyName", ""), request.args.get("id", "")
        if company.lower() != store.company or key_id != store.signing_key_id:
            raise CWError(404, "NotFound", "Callback key not found")
        return jsonify(signing_key=store.signing_key)

    for rule in (
        "/v2025_1/system/callbackkey/index.rails",
        "/v2025_1//system/callbackkey/index.rails",
    ):
        app.add_url_rule(rule, view_func=signing_key, endpoint=rule, merge_slashes=False)

    # --- authentication and listings -------------------------------------------------------

    @api.before_request
    def authenticate() -> None:
        if not request.headers.get("clientId"):
            raise CWError(401, "Unauthorized", "clientId header is required")
        g.member = _principal(store)
        if g.member is None:
            raise CWError(401, "Unauthorized", "UserNotAuthenticated")

    def int_arg(name: str, default: int) -> int:
        try:
            return int(request.args.get(name, default))
        except ValueError:
            raise CWError(400, "InvalidObject", f"{name} must be a number") from None

    def listing(records: list[dict[str, Any]]) -> Response:
        """Filter by `conditions`, then one page with a navigable `Link` header, like CW."""
        try:
            conditions = parse_conditions(request.args.get("conditions", ""))
        except ValueError as exc:
            raise CWError(400, "InvalidObject", str(exc)) from None
        rows = [r for r in records if matches(r, conditions)]
        size = max(1, min(int_arg("pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE))
        page, last = max(1, int_arg("page", 1)), max(1, -(-len(rows) // size))
        response = jsonify(rows[(page - 1) * size : page * size])

        def link(number: int, rel: str) -> str:
            query = {**request.args.to_dict(), "page": str(number), "pageSize": str(size)}
            return f'<{request.base_url}?{urlencode(query)}>; rel="{rel}"'

        links = [link(page - 1, "prev"), link(1, "first")] if page > 1 else []
        links += [link(page + 1, "next"), link(last, "last")] if page < last else []
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    def patch_ops(resource: str) -> list[tuple[str, Any]]:
        ops = request.get_json(silent=True)
        if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
            raise CWError(400, "InvalidObject", "Expected a JSON-Patch array")
        for op in ops:
            if op.get("op") not in ("replace", "add") or not isinstance(op.get("path"), str):
                raise CWError.invalid_field(resource, str(op.get("path")), "Unsupported operation")
        return [(op["path"].strip("/"), op.get("value")) for op in ops]

    def json_object() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise CWError(400, "InvalidObject", "Expected a JSON object")
        return body

    # --- tickets --------------------------------------------------------------------------

    @api.get("/service/tickets")
    def tickets() -> Response:
        return listing([ticket_json(store, t) for t in store.tickets()])

    @api.get("/service/tickets/<int:ticket_id>")
    def ticket(ticket_id: int) -> Response:
        return jsonify(ticket_json(store, store.ticket(ticket_id)))

    @api.patch("/service/tickets/<int:ticket_id>")
    def patch_ticket(ticket_id: int) -> Response:
        current = store.ticket(ticket_id)
        for path, value in patch_ops("ticket"):
            if path != "status" or not isinstance(value, dict):
                raise CWError.invalid_field("ticket", path, "The sandbox patches only status")
            board = store.board(current.board)
            name = board.status_name(value["id"]) if "id" in value else value.get("name")
            if not isinstance(name, str) or board.status_id(name) is None:
                raise CWError.invalid_field("ticket", "status", "Status not valid for the board")
            current = store.set_status(ticket_id, name, actor=g.member.identifier)
        return jsonify(ticket_json(store, current))

    @api.get("/service/tickets/<int:ticket_id>/notes")
    @api.get("/service/tickets/<int:ticket_id>/allNotes", endpoint="all_notes")
    def notes(ticket_id: int) -> Response:
        every = request.path.endswith("/allNotes")
        return listing([note_json(store, n, all_notes=every) for n in store.notes(ticket_id)])

    @api.post("/service/tickets/<int:ticket_id>/notes")
    def add_note(ticket_id: int) -> tuple[Response, int]:
        store.ticket(ticket_id)
        body = json_object()
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            raise CWError.invalid_field("ticketNote", "text", "Text is required")
        flags = {f: bool(body.get(f)) for f in
                 ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")}  # fmt: skip
        if not any(flags.values()):
            message = "One of Discussion, Internal or Resolution must be selected"
            raise CWError.invalid_field("ticketNote", "detailDescriptionFlag", message)
        note = store.add_note(
            ticket_id, body["text"], author=g.member.identifier,
            detail=flags["detailDescriptionFlag"], internal=flags["internalAnalysisFlag"],
            resolution=flags["resolutionFlag"],
        )  # fmt: skip
        return jsonify(note_json(store, note)), 201

    @api.get("/service/tickets/<int:ticket_id>/configurations")
    def ticket_configurations(ticket_id: int) -> Response:
        refs = [{"id": c.id, "deviceIdentifier": c.name} for c in store.configurations(ticket_id)]
        return listing(refs)

    @api.get("/company/configurations/<int:config_id>")
    def configuration(config_id: int) -> Response:
        c = store.configuration(config_id)
        return jsonify(
            id=c.id, name=c.name, type={"name": c.type}, status={"name": "Active"},
            company=_company_ref(store, c.company), osType=c.os, ipAddress=c.ip,
            serialNumber=c.serial,
        )  # fmt: skip

    @api.get("/time/entries")
    def time_entries() -> Response:
        rows = [
            {"id": t.id, "chargeToId": t.ticket_id, "chargeToType": "ServiceTicket",
             "member": _member_ref(store, t.member), "timeStart": t.start,
             "timeEnd": _plus_minutes(t.start, t.minutes), "actualHours": round(t.minutes / 60, 2),
             "notes": t.notes}
            for t in store.time_entries()
        ]  # fmt: skip
        return listing(rows)

    # --- boards ---------------------------------------------------------------------------

    @api.get("/service/boards")
    def boards() -> Response:
        return listing(
            [{"id": b.id, "name": b.name, "inactiveFlag": False} for b in store.boards()]
        )

    @api.get("/service/boards/<int:board_id>/statuses")
    def statuses(board_id: int) -> Response:
        b = store.board(board_id)
        return listing([
            {"id": sid, "name": name, "board": {"id": b.id, "name": b.name}, "sortOrder": order,
             "defaultFlag": name == "New", "inactive": False, "closedStatus": name == "Resolved"}
            for order, (sid, name) in enumerate(b.statuses)
        ])  # fmt: skip

    # --- callbacks --------------------------------------------------------------------------

    def check_callback(entry: dict[str, Any]) -> None:
        url = urlsplit(str(entry.get("url") or ""))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise CWError.invalid_field("callbackEntry", "url", "Invalid URL")
        if entry.get("type") not in CALLBACK_TYPES:
            raise CWError.invalid_field("callbackEntry", "type", "Invalid type")
        if not isinstance(entry.get("level"), str) or not entry["level"]:
            raise CWError.invalid_field("callbackEntry", "level", "Level is required")
        if not isinstance(entry.get("objectId"), int):
            raise CWError.invalid_field("callbackEntry", "objectId", "objectId is required")
        if len(str(entry.get("description") or "")) > 100:
            raise CWError.invalid_field("callbackEntry", "description", "Max length is 100")

    @api.get("/system/callbacks")
    def callbacks() -> Response:
        return listing(store.callbacks())

    @api.post("/system/callbacks")
    def add_callback() -> tuple[Response, int]:
        body = json_object()
        check_callback(body)
        entry = store.add_callback({
            "description": body.get("description", ""), "url": body["url"],
            "objectId": body["objectId"], "type": body["type"], "level": body["level"],
            "memberId": g.member.id, "inactiveFlag": bool(body.get("inactiveFlag")),
            "isSoapCallbackFlag": False,
            "isSelfSuppressedFlag": bool(body.get("isSelfSuppressedFlag")),
            "payloadVersion": body.get("payloadVersion"), "connectWiseID": str(uuid.uuid4()),
            "_info": {"lastUpdated": now_iso(), "updatedBy": g.member.identifier},
        })  # fmt: skip
        return jsonify(entry), 201

    @api.get("/system/callbacks/<int:callback_id>")
    def callback(callback_id: int) -> Response:
        return jsonify(store.callback(callback_id))

    @api.patch("/system/callbacks/<int:callback_id>")
    def patch_callback(callback_id: int) -> Response:
        changes = dict(patch_ops("callbackEntry"))
        if fixed := sorted(changes.keys() - CALLBACK_PATCHABLE):
            raise CWError.invalid_field("callbackEntry", fixed[0], "Field cannot be changed")
        check_callback({**store.callback(callback_id), **changes})
        changes["_info"] = {"lastUpdated": now_iso(), "updatedBy": g.member.identifier}
        return jsonify(store.update_callback(callback_id, changes))

    @api.delete("/system/callbacks/<int:callback_id>")
    def delete_callback(callback_id: int) -> tuple[str, int]:
        store.delete_callback(callback_id)
        return "", 204

    # --- system -----------------------------------------------------------------------------

    @api.get("/system/info")
    def system_info() -> Response:
        return jsonify(version="v2025.1", isCloud=False, serverTimeZone="UTC")

    @api.get("/system/myMembers/info")
    def my_member() -> Response:
        return jsonify(member_json(g.member))

    app.register_blueprint(api)

    # --- firing callbacks -------------------------------------------------------------------

    def fire(kind: str, ticket_id: int, actor: str) -> None:
        t = store.ticket(ticket_id)
        entity = json.dumps(ticket_json(store, t))
        board = store.board(t.board)
        actor_member = store.member(actor)
        for cb in store.callbacks():
            if cb["inactiveFlag"] or cb["type"] != "ticket":
                continue
            if cb["isSelfSuppressedFlag"] and actor_member and actor_member.id == cb["memberId"]:
                continue  # the callback's creator does not hear about its own changes
            scope = {"board": board.id, "status": board.status_id(t.status)}
            if cb["level"] in scope and cb["objectId"] != scope[cb["level"]]:
                continue
            body = {
                "MessageId": str(uuid.uuid4()), "FromUrl": urlsplit(public_base).netloc,
                "CompanyId": store.company, "MemberId": actor, "Action": "updated",
                "Type": "ticket", "ID": ticket_id, "ProductInstanceId": store.product_instance_id,
                "PartnerId": store.partner_id, "Entity": entity, "Metadata": {"key_url": key_url},
                "CallbackObjectRecId": cb["id"],
            }  # fmt: skip
            sender.send(cb["url"] + str(ticket_id), json.dumps(body).encode())

    store.set_listener("connectwise", fire)
    return app


def _plus_minutes(start: str, minutes: int) -> str:
    moment = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
