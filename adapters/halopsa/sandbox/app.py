"""The sandbox PSA in HaloPSA's REST dialect.

Mounted at a site root (see adapters/sandbox/server.py): `/api/authinfo` (no credentials) names
the authorisation server at `/auth` and the tenant; `POST /auth/token?tenant=` issues
client-credentials tokens; the API under `/api/` wants `Authorization: Bearer`. The records are
the same SandboxStore tickets every dialect serves, with the same ids; notes and time entries
are actions. Lists come the ways Halo sends them (plain arrays, or {"record_count", "<name>":
[...]}), and an unpaged action list longer than UNPAGED_ACTIONS is cut to its first page, as a
server that pages anyway would. Webhooks: webhooks.py.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from adapters.halopsa.sandbox.http import HaloError, flag, int_arg, one_or_many, page, records
from adapters.halopsa.sandbox.render import (
    OUTCOME_NAMES,
    OUTCOMES,
    STATUS_IDS,
    STATUS_NAMES,
    agent_json,
    asset_json,
    note_action,
    system_action,
    ticket_json,
    time_action,
)
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TENANT,
    halo_state,
)
from adapters.halopsa.sandbox.webhooks import serve_webhooks
from adapters.halopsa.text import html_text
from adapters.sandbox.store import NotInSandbox, SandboxStore

TOKEN_SECONDS = 3600
UNPAGED_ACTIONS = 100
RATE_LIMITED = "Rate Limit Reached - {n} Requests per rolling {minutes:g} minute window"


def create_halopsa_app(store: SandboxStore, public_base: str) -> Flask:
    """The Halo dialect; `public_base` is the URL this app is reachable at (its site root)."""
    public_base = public_base.rstrip("/")
    state = halo_state(store)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = Blueprint("halo_api", __name__, url_prefix="/api")

    @app.errorhandler(HaloError)
    def halo_error(exc: HaloError) -> tuple[Response, int]:
        return jsonify(exc.body), exc.status

    @app.errorhandler(NotInSandbox)
    def not_found(exc: NotInSandbox) -> tuple[Response, int]:
        return halo_error(HaloError(404, f"{str(exc).capitalize()} was not found."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return halo_error(HaloError(exc.code or 500, exc.description or exc.name))

    @app.before_request
    def rolling_window() -> None:
        """Halo counts every request, token requests too, in a rolling window."""
        with state.lock:
            state.requests += 1
            if state.window is None:
                return
            limit, seconds = state.window
            now = time.monotonic()
            while state.recent and state.recent[0] <= now - seconds:
                state.recent.popleft()
            if len(state.recent) >= limit:
                raise HaloError(429, RATE_LIMITED.format(n=limit, minutes=seconds / 60))
            state.recent.append(now)

    # --- the authorisation server: no bearer token --------------------------------------------

    @app.get("/api/authinfo")
    def authinfo() -> Response:
        return jsonify(auth_url=public_base + "/auth", tenant_id=SANDBOX_HALO_TENANT)

    @app.post("/auth/token")
    def token() -> Response:
        if request.args.get("tenant", "").lower() != SANDBOX_HALO_TENANT:
            raise HaloError(500, "An error has occurred.", Message="An error has occurred.")
        form = request.form
        if form.get("grant_type") != "client_credentials":
            raise HaloError(400, "grant", error="unsupported_grant_type")
        client_ok = hmac.compare_digest(form.get("client_id", ""), SANDBOX_HALO_CLIENT_ID)
        secret_ok = hmac.compare_digest(form.get("client_secret", ""), SANDBOX_HALO_CLIENT_SECRET)
        if not (client_ok and secret_ok):
            raise HaloError(401, "client", error="invalid_client",
                            error_description="The client credentials are invalid")  # fmt: skip
        issued = secrets.token_urlsafe(32)
        with state.lock:
            state.tokens[issued] = time.monotonic() + TOKEN_SECONDS
        return jsonify(access_token=issued, token_type="Bearer",  # noqa: S106 (a token type)
                       expires_in=TOKEN_SECONDS, scope=form.get("scope") or "all")  # fmt: skip

    @api.before_request
    def authenticate() -> None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        with state.lock:
            expires = state.tokens.get(given.strip()) if scheme.lower() == "bearer" else None
        if expires is None or expires <= time.monotonic():
            raise HaloError(401, "Authorization has been denied for this request.")
        g.member = store.member(store.api_member)

    # --- tickets ---------------------------------------------------------------------------------

    @api.get("/Tickets")
    def tickets() -> Response:
        return page([ticket_json(store, t) for t in store.tickets()], "tickets")

    @api.get("/Tickets/<int:ticket_id>")
    def ticket(ticket_id: int) -> Response:
        return jsonify(ticket_json(store, store.ticket(ticket_id), details=flag("includedetails")))

    @api.post("/Tickets")
    def save_tickets() -> Response:
        """Halo's upsert; the sandbox only moves existing tickets between statuses."""
        saved = []
        for record in records():
            ticket_id, status = record.get("id"), record.get("status_id")
            if not isinstance(ticket_id, int) or set(record) - {"id", "status_id"}:
                raise HaloError(400, "The sandbox updates only an existing ticket's status_id.")
            store.ticket(ticket_id)
            if status not in STATUS_NAMES:
                raise HaloError(400, f"status_id {status!r} is not a status.")
            moved = store.set_status(ticket_id, STATUS_NAMES[status], actor=g.member.identifier)
            saved.append(ticket_json(store, moved))
        return jsonify(saved)  # an array back, as some instances answer

    # --- actions ---------------------------------------------------------------------------------

    def actions_of(ticket_id: int) -> list[dict[str, Any]]:
        t = store.ticket(ticket_id)
        with state.lock:
            notes = [note_action(store, n, state.actions.get(n.id)) for n in store.notes(t.id)[1:]]
        timed = [time_action(store, e) for e in store.time_entries(t.id)]
        return sorted([system_action(t), *notes, *timed], key=lambda a: (a["datetime"], a["id"]))

    @api.get("/Actions")
    def actions() -> Response:
        ticket_id = int_arg("ticket_id")
        if ticket_id is None:
            raise HaloError(400, "ticket_id is required.")
        rows = actions_of(ticket_id)
        if flag("excludesys"):
            rows = [a for a in rows if not a["action_systemid"]]
        if flag("excludeprivate"):
            rows = [a for a in rows if not a["hiddenfromuser"]]
        if not flag("includehtmlnote"):
            rows = [{k: v for k, v in a.items() if k != "note_html"} for a in rows]
        return page(rows, "actions", UNPAGED_ACTIONS)

    @api.post("/Actions")
    def save_actions() -> Response:
        saved = []
        for record in records():
            ticket_id = record.get("ticket_id")
            if not isinstance(ticket_id, int):
                raise HaloError(400, "ticket_id is required.", **{"[0].ticket_id": ["Required"]})
            store.ticket(ticket_id)
            outcome_id = record.get("outcome_id") or next(
                (i for i, name in OUTCOME_NAMES.items()
                 if name.lower() == str(record.get("outcome") or "").lower()),
                None,
            )  # fmt: skip
            if outcome_id not in OUTCOME_NAMES:
                raise HaloError(400, "The action needs a valid outcome_id or outcome.")
            html = str(record.get("note_html") or "")
            text = html_text(html) if html else str(record.get("note") or "").strip()
            if not text:
                raise HaloError(400, "The action needs a note.")
            hidden = bool(record.get("hiddenfromuser"))
            with state.lock:  # what it was saved with is known before anyone reads it
                note = store.add_note(
                    ticket_id, text, author=g.member.identifier, detail=not hidden, internal=hidden
                )
                state.actions[note.id] = {
                    "outcome_id": outcome_id, "sendemail": bool(record.get("sendemail")),
                    "hiddenfromuser": hidden, "note_html": html,
                    "timetaken": record.get("timetaken"),
                }  # fmt: skip
                saved.append(note_action(store, note, state.actions[note.id]))
        return jsonify(one_or_many(saved))  # one object back for one action

    # --- lists -----------------------------------------------------------------------------------

    @api.get("/Status")
    def statuses() -> Response:
        return jsonify([
            {"id": sid, "name": name, "shortname": name, "type": 0, "sequence": order}
            for order, (name, sid) in enumerate(STATUS_IDS.items(), start=1)
        ])  # fmt: skip

    @api.get("/Outcome")
    def outcomes() -> Response:
        return jsonify(OUTCOMES)

    @api.get("/Agent")
    def agents() -> Response:
        return jsonify([
            agent_json(store, m) for m in store.members()
            if (m.active or flag("includedisabled"))
            and (m.identifier != store.api_member or flag("includeapiagents"))
        ])  # fmt: skip

    @api.get("/Agent/me")
    def me() -> Response:
        return jsonify(agent_json(store, g.member))

    @api.get("/Agent/<int:agent_id>")
    def agent(agent_id: int) -> Response:
        member = store.member_by_id(agent_id)
        if member is None:
            raise NotInSandbox(f"agent {agent_id}")
        return jsonify(agent_json(store, member))

    @api.get("/Asset")
    def assets() -> Response:
        ticket_id = int_arg("ticket_id")
        found = asset_json(store, store.ticket(ticket_id)) if ticket_id is not None else []
        return page(found, "assets")

    serve_webhooks(api, store, state)
    app.register_blueprint(api)
    return app
