"""The webhook audit: one row per request, written the cheapest way that keeps it complete.

A delivery that records an escalation writes its row in the escalation's own commit. Every
other answer (an ignored event, a refusal: most of what a PSA sends) appends its row to one
Redis stream, in the round trip that also takes the rate limit (connector/ingest_gate.py), so
the web process spends no database round trip on it. `flush` copies the stream into
webhook_deliveries in batches and trims what it copied; the copy is idempotent by entry id,
so concurrent flushers, or one that died before trimming, never write a row twice. Workers
flush after every job and while idle, the sweep flushes, and every reader flushes first: the
audit is complete when read, and ordered by arrival (received_at), not by insertion.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, cast

import redis
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from connector.db import session, utcnow
from connector.models import Tenant, WebhookDelivery

log = logging.getLogger(__name__)

STREAM = "baton:webhook-audit"
BATCH = 1000
TABLE = cast(Table, WebhookDelivery.__table__)


def row(
    tenant_id: int | None,
    slug: str,
    vendor: str,
    outcome: str,
    status: int,
    reason: str = "",
    delivery_key: str | None = None,
    escalation_id: int | None = None,
    remote_addr: str | None = None,
) -> dict[str, Any]:
    """An audit row's values, cut to the columns' sizes."""
    return {
        "tenant_id": tenant_id,
        "tenant_slug": slug[:64],
        "vendor": vendor[:32],
        "received_at": utcnow(),
        "outcome": outcome,
        "status_code": status,
        "reason": reason[:500],
        "delivery_key": (delivery_key or None) and delivery_key[:200],
        "escalation_id": escalation_id,
        "remote_addr": remote_addr,
    }


def encode(values: dict[str, Any]) -> str:
    """A row as one stream field (JSON keeps None and numbers apart from strings)."""
    return json.dumps({**values, "received_at": values["received_at"].isoformat()})


def _decode(entry_id: Any, fields: Any) -> dict[str, Any] | None:
    raw: Any = (fields or {}).get(b"row", (fields or {}).get("row"))
    try:
        values = json.loads(raw)
        values["received_at"] = datetime.fromisoformat(values["received_at"])
    except (TypeError, ValueError, KeyError):
        return None
    stream_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return {**{c: values.get(c) for c in _COLUMNS}, "stream_id": stream_id}


_COLUMNS = (
    "tenant_id",
    "tenant_slug",
    "vendor",
    "received_at",
    "outcome",
    "status_code",
    "reason",
    "delivery_key",
    "escalation_id",
    "remote_addr",
)


def write_now(values: dict[str, Any]) -> None:
    """The row straight into the database, committed (Redis could not take it)."""
    session.connection().execute(TABLE.insert(), values)
    session.commit()


def flush(connection: redis.Redis) -> int:
    """Copy every row waiting in the stream into webhook_deliveries; returns how many."""
    copied = 0
    while True:
        entries: Any = connection.xrange(STREAM, count=BATCH)
        if not entries:
            return copied
        rows = [r for r in (_decode(i, f) for i, f in entries) if r is not None]
        if len(rows) < len(entries):
            log.error(
                "unreadable audit entries dropped",
                extra={"fields": {"count": len(entries) - len(rows)}},
            )
        # A tenant deleted since its row was queued: the database would refuse the whole batch.
        wanted = {r["tenant_id"] for r in rows if r["tenant_id"] is not None}
        present = (
            set(session.scalars(select(Tenant.id).where(Tenant.id.in_(wanted))))
            if wanted
            else set()
        )
        rows = [r for r in rows if r["tenant_id"] is None or r["tenant_id"] in present]
        if rows:
            dialect = session.get_bind().dialect.name
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(TABLE)
            session.connection().execute(
                insert.on_conflict_do_nothing(index_elements=["stream_id"]), rows
            )
        session.commit()
        connection.xdel(STREAM, *[entry_id for entry_id, _ in entries])
        copied += len(rows)
        if len(entries) < BATCH:
            return copied


def flush_quietly(connection: redis.Redis) -> int:
    """`flush` for a caller that must go on without it (a reader, a worker between jobs):
    what stays in the stream is copied by the next flush."""
    try:
        return flush(connection)
    except Exception as exc:
        session.rollback()
        log.warning("audit flush failed", extra={"fields": {"error": type(exc).__name__}})
        return 0
