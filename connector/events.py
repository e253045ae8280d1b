"""Live panel updates: one Redis stream per tenant. Stream ids double as SSE event ids, so a
reconnecting panel resumes from Last-Event-ID; the stream keeps the last few hundred events."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

log = logging.getLogger(__name__)

STREAM_LENGTH = 500
TERMINAL_EVENTS = ("handoff.ready", "handoff.fallback")


def stream_key(tenant_id: int) -> str:
    return f"baton:events:{tenant_id}"


def publish(connection: redis.Redis, tenant_id: int, kind: str, data: dict[str, Any]) -> None:
    """Best effort: a missed event is repaired by the panel re-reading on reconnect."""
    try:
        connection.xadd(
            stream_key(tenant_id),
            {"kind": kind, "data": json.dumps(data, default=str)},
            maxlen=STREAM_LENGTH,
            approximate=True,
        )
    except redis.RedisError as exc:
        log.warning(
            "event not published", extra={"fields": {"kind": kind, "error": type(exc).__name__}}
        )
