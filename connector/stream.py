"""GET /api/v1/stream: Server-Sent Events for the member's tenant, read from its Redis stream.

Stream ids are the event ids, so a reconnecting EventSource resumes after Last-Event-ID. The
database session is released before streaming; Redis is read with short blocking XREADs, and a
comment goes out at once and then as a heartbeat so proxies neither buffer nor time out.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from connector import events
from connector.auth import current_member
from connector.db import session
from connector.errors import APIError
from connector.models import Escalation, Member

HEARTBEAT_SECONDS = "BATON_SSE_HEARTBEAT_SECONDS"  # app.config keys; tests shorten them
MAX_SECONDS = "BATON_SSE_MAX_SECONDS"
BLOCK_MS = 1000  # short slices: a closed client is noticed at the next write
RETRY_MS = 3000
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

blp = Blueprint(
    "stream", __name__, url_prefix="/api/v1", description="Live panel updates (Server-Sent Events)"
)


@dataclass
class Viewer:
    """Seniors see every event of their tenant; a technician only those of their escalations."""

    tenant_id: int
    member_id: int
    senior: bool
    session_key: str  # the member's when the stream began
    owned: dict[int, bool] = field(default_factory=dict)

    def still_in(self) -> bool:
        """Not removed, and their sessions not ended since: a stream ends with its session, and
        when the database cannot tell (the reconnect checks again)."""
        try:
            key = session.scalar(select(Member.session_key).where(Member.id == self.member_id))
        except SQLAlchemyError:
            key = None
        finally:
            session.remove()
        return key == self.session_key

    def may_see(self, data: dict[str, Any]) -> bool:
        if self.senior:
            return True
        escalation_id = data.get("escalation_id")
        if not isinstance(escalation_id, int):
            return False
        if escalation_id not in self.owned:
            owner = session.scalar(
                select(Escalation.escalated_by_member_id).where(
                    Escalation.id == escalation_id, Escalation.tenant_id == self.tenant_id
                )
            )
            session.remove()  # hold no connection while the stream is idle
            self.owned[escalation_id] = owner == self.member_id
        return self.owned[escalation_id]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _latest_id(connection: redis.Redis, key: str) -> str:
    """Where "now" is: new events are those after the newest one stored."""
    newest = connection.xrevrange(key, count=1)
    return _text(newest[0][0]) if newest else "0-0"


def frame(event_id: str, kind: str, data: str) -> str:
    kind = kind.replace("\n", " ").replace("\r", " ")
    data = data.replace("\r", "").replace("\n", " ")  # one data line (JSON has none anyway)
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


def event_stream(
    connection: redis.Redis,
    key: str,
    last_id: str,
    viewer: Viewer,
    *,
    heartbeat: float,
    max_seconds: float,
) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    started = last_write = time.monotonic()
    while time.monotonic() - started < max_seconds:
        try:
            batches: Any = connection.xread({key: last_id}, count=100, block=BLOCK_MS)
        except redis.RedisError:
            return  # the client reconnects with Last-Event-ID and misses nothing
        for _key, entries in batches or []:
            if entries and not viewer.still_in():
                return
            for entry_id, entry in entries:
                last_id = _text(entry_id)
                fields = {_text(k): _text(v) for k, v in entry.items()}
                try:
                    data = json.loads(fields.get("data", "{}"))
                except ValueError:
                    continue
                if isinstance(data, dict) and viewer.may_see(data):
                    yield frame(last_id, fields.get("kind", "message"), fields.get("data", "{}"))
                    last_write = time.monotonic()
        if time.monotonic() - last_write >= heartbeat:
            if not viewer.still_in():
                return
            yield ": ping\n\n"
            last_write = time.monotonic()
    # Past max_seconds the stream ends; the EventSource reconnects, which re-checks the session.


STREAM_DOC = {
    "parameters": [
        {
            "in": "header",
            "name": "Last-Event-ID",
            "required": False,
            "schema": {"type": "string"},
            "description": "resume after this event id (EventSource sends it on reconnect)",
        },
        {
            "in": "query",
            "name": "last_event_id",
            "required": False,
            "schema": {"type": "string"},
            "description": "the same, for clients that cannot set headers",
        },
    ],
    "responses": {
        "200": {
            "description": "events `escalation.created`, `handoff.pending`, `handoff.writing` "
            "(the model has written more: `fields` names those written so far), "
            "`handoff.ready`, `handoff.fallback`, `handoff.stale` (`new_notes` on the ticket "
            "since the handoff), `escalation.claimed`; each `data` is JSON with "
            "`escalation_id`; `: ping` comments are heartbeats",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
}


@blp.route("/stream")
class Stream(MethodView):
    @blp.doc(**STREAM_DOC)
    def get(self):
        """Live events of the member's tenant (Server-Sent Events)"""
        member = current_member()
        resume = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
        resume = resume.strip()
        if resume and not STREAM_ID.match(resume):
            raise APIError(400, "invalid_request", "Last-Event-ID: not an event id of this stream")
        viewer = Viewer(member.tenant_id, member.id, member.is_senior, member.session_key)
        connection = current_app.extensions["baton"].redis
        key = events.stream_key(member.tenant_id)  # this tenant's stream and no other
        try:
            start = resume or _latest_id(connection, key)
        except redis.RedisError:
            raise APIError(503, "unavailable", "live updates are unavailable; retry") from None
        heartbeat = float(current_app.config.get(HEARTBEAT_SECONDS, 15))
        max_seconds = float(current_app.config.get(MAX_SECONDS, 1800))
        session.remove()  # a stream may last many minutes: give the connection back now
        body = event_stream(
            connection, key, start, viewer, heartbeat=heartbeat, max_seconds=max_seconds
        )
        return Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
