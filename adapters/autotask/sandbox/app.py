"""The sandbox PSA in Autotask's REST dialect (V1.0).

Mounted at a site root (see adapters/sandbox/server.py): zone discovery at
`/atservicesrest/V1.0/zoneInformation` (unauthenticated) and the API under
`/ATServicesRest/V1.0/`, checking the `ApiIntegrationCode`, `UserName` and `Secret` headers with
Autotask's status-code quirks. The records are the same SandboxStore tickets every dialect
serves, with the same ids; statuses become picklist ids. Ticket webhooks: webhooks.py.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from adapters.autotask.sandbox.collections import collection, entity_fields, notes_of
from adapters.autotask.sandbox.errors import ATError, body_object
from adapters.autotask.sandbox.filters import holds
from adapters.autotask.sandbox.render import (
    NOTE_TYPES,
    PUBLISH,
    PUBLISH_ALL,
    PUBLISH_INTERNAL,
    STATUS_NAMES,
    WORKFLOW_RULE_NOTE,
)
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
    autotask_state,
)
from adapters.autotask.sandbox.webhooks import serve_ticket_webhooks
from adapters.sandbox.store import NotInSandbox, SandboxStore

API_ROOT = "/ATServicesRest/V1.0"
ZONE_PATHS = (
    "/atservicesrest/V1.0/zoneInformation",
    "/atservicesrest/v1.0/zoneInformation",
    "/ATServicesRest/V1.0/zoneInformation",
    "/ATServicesRest/V1.0/ZoneInformation",
)
NOTE_MAX_CHARS = 32000
THREADS_PER_ENDPOINT = 3
MAX_RECORDS = 500
HOURLY_THRESHOLD = 10000


def create_autotask_app(store: SandboxStore, public_base: str) -> Flask:
    """The Autotask dialect; `public_base` is the URL this app is reachable at (its site root)."""
    public_base = public_base.rstrip("/")
    zone_url = public_base + "/ATServicesRest/"
    api_base = public_base + API_ROOT
    state = autotask_state(store)
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
                state.refused += 1
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
        rows = collection(store, state, entity)
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
        found = next((r for r in collection(store, state, entity) if r.get("id") == item_id), None)
        return jsonify(item=found)

    @api.get("/<entity>/entityInformation/fields")
    def fields(entity: str) -> Response:
        return jsonify(fields=entity_fields(store, state, entity))

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
        found = next((n for n in notes_of(store, state, ticket_id) if n["id"] == note_id), None)
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

    serve_ticket_webhooks(api, store, state)
    app.register_blueprint(api)
    return app
