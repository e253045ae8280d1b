"""The sandbox PSA in the ConnectWise PSA (Manage) REST dialect, codebase v2025_1.

Mounted at a site root (see adapters/sandbox/server.py): `/login/companyinfo/<company>`, the
unauthenticated callback signing-key URL, and the authenticated API under `/v2025_1/apis/3.0/`.
Ticket changes fire signed ticket callbacks to every registered CallbackEntry (callbacks.py).
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from adapters.connectwise.sandbox.callbacks import CODEBASE, callback_listener
from adapters.connectwise.sandbox.query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    matches,
    parse_conditions,
)
from adapters.connectwise.sandbox.render import (
    company_ref,
    member_json,
    member_ref,
    note_json,
    ticket_json,
)
from adapters.connectwise.sandbox.state import (
    ConnectWiseState,
    connectwise_state,
    sandbox_member_hash,
)
from adapters.sandbox.store import Member, NotInSandbox, SandboxStore, now_iso, plus_minutes

API_ROOT = "/v2025_1/apis/3.0"

CALLBACK_TYPES = {
    "ticket", "project", "company", "contact", "opportunity", "activity", "schedule",
    "agreement", "configuration", "time", "member", "invoice", "purchaseorder", "expense",
    "productcatalog",
}  # fmt: skip
# ConnectWise's "Levels and Types" for Type Ticket (its PSA Callbacks documentation).
TICKET_CALLBACK_LEVELS = {"owner", "board", "project", "phase", "status", "ticket", "integratortag"}
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


def _principal(store: SandboxStore, state: ConnectWiseState) -> Member | None:
    """Who the Basic credentials name: the API member (keys) or a member (memberHash)."""
    auth = request.authorization
    if not auth or auth.type != "basic" or "+" not in (auth.username or ""):
        return None
    company, user = (auth.username or "").split("+", 1)
    secret = (auth.password or "").encode()
    if company.lower() != state.company:
        return None
    if user == state.public_key:
        ok = hmac.compare_digest(secret, state.private_key.encode())
        return store.member(store.api_member) if ok else None
    member = store.member(user)
    if (
        member
        and member.active
        and hmac.compare_digest(secret, sandbox_member_hash(store, user).encode())
    ):
        return member
    return None


def create_connectwise_app(store: SandboxStore, public_base: str) -> Flask:
    """The ConnectWise dialect; `public_base` is the URL this app is reachable at (the site)."""
    public_base = public_base.rstrip("/")
    state = connectwise_state(store)
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
        if company.lower() != state.company:
            return jsonify(None)
        return jsonify(Codebase=CODEBASE, VersionCode="v2025.1", CompanyID=company, IsCloud=False)

    def signing_key() -> Response:
        company, key_id = request.args.get("companyName", ""), request.args.get("id", "")
        if company.lower() != state.company or key_id != state.signing_key_id:
            raise CWError(404, "NotFound", "Callback key not found")
        return jsonify(signing_key=state.signing_key)

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
        g.member = _principal(store, state)
        if g.member is None:
            raise CWError(401, "Unauthorized", "UserNotAuthenticated")

    def int_arg(name: str, default: int) -> int:
        try:
            return int(request.args.get(name, default))
        except ValueError:
            raise CWError(400, "InvalidObject", f"{name} must be a number") from None

    def listing(records: list[dict[str, Any]]) -> Response:
        """Filter by `conditions`, keep only `fields` when asked, then one page with a
        navigable `Link` header, like CW."""
        try:
            conditions = parse_conditions(request.args.get("conditions", ""))
        except ValueError as exc:
            raise CWError(400, "InvalidObject", str(exc)) from None
        rows = [r for r in records if matches(r, conditions)]
        size = max(1, min(int_arg("pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE))
        page, last = max(1, int_arg("page", 1)), max(1, -(-len(rows) // size))
        rows = rows[(page - 1) * size : page * size]
        if wanted := {f.strip() for f in request.args.get("fields", "").split(",") if f.strip()}:
            rows = [{k: v for k, v in r.items() if k in wanted} for r in rows]
        response = jsonify(rows)

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
            company=company_ref(store, c.company), osType=c.os, ipAddress=c.ip,
            serialNumber=c.serial,
        )  # fmt: skip

    @api.get("/time/entries")
    def time_entries() -> Response:
        rows = [
            {"id": t.id, "chargeToId": t.ticket_id, "chargeToType": "ServiceTicket",
             "member": member_ref(store, t.member), "timeStart": t.start,
             "timeEnd": plus_minutes(t.start, t.minutes), "actualHours": round(t.minutes / 60, 2),
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
        level = entry["level"].lower()
        if entry["type"] == "ticket" and level not in TICKET_CALLBACK_LEVELS:
            raise CWError.invalid_field("callbackEntry", "level", "Unrecognized level for type")
        if entry["type"] == "ticket" and level == "board":
            store.board(entry["objectId"])  # an unknown board is ConnectWise's 404
        if len(str(entry.get("description") or "")) > 100:
            raise CWError.invalid_field("callbackEntry", "description", "Max length is 100")

    @api.get("/system/callbacks")
    def callbacks() -> Response:
        return listing(state.callbacks())

    @api.post("/system/callbacks")
    def add_callback() -> tuple[Response, int]:
        body = json_object()
        check_callback(body)
        entry = state.add_callback({
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
        return jsonify(state.callback(callback_id))

    @api.patch("/system/callbacks/<int:callback_id>")
    def patch_callback(callback_id: int) -> Response:
        changes = dict(patch_ops("callbackEntry"))
        if fixed := sorted(changes.keys() - CALLBACK_PATCHABLE):
            raise CWError.invalid_field("callbackEntry", fixed[0], "Field cannot be changed")
        check_callback({**state.callback(callback_id), **changes})
        changes["_info"] = {"lastUpdated": now_iso(), "updatedBy": g.member.identifier}
        return jsonify(state.update_callback(callback_id, changes))

    @api.delete("/system/callbacks/<int:callback_id>")
    def delete_callback(callback_id: int) -> tuple[str, int]:
        state.delete_callback(callback_id)
        return "", 204

    # --- system -----------------------------------------------------------------------------

    @api.get("/system/info")
    def system_info() -> Response:
        return jsonify(version="v2025.1", isCloud=False, serverTimeZone="UTC")

    @api.get("/system/members")
    def members() -> Response:
        return listing([member_json(store, m) for m in store.members()])

    @api.get("/system/myMembers/info")
    def my_member() -> Response:
        return jsonify(member_json(store, g.member))

    app.register_blueprint(api)
    store.set_listener("connectwise", callback_listener(store, public_base))
    return app
