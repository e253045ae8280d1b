"""Which of a tenant's tickets may be in an escalated status, kept in Redis, so that the
commonest delivery (a save of a ticket that was never escalated) needs no database at all.

The set is a superset of the ticket_states rows marked escalated: a ticket is added before
the commit that marks it (by the webhook's gate, in its one round trip, or by record()), and
nothing removes one (a ticket that has left is merely checked in the database, as every
delivery was before). Its COMPLETE member says the set was
built from the database; without it (Redis restarted, the key evicted) deliveries go to the
database until `rebuild` has run. An add that failed (Redis unreachable for that call) would
break the superset; the sweep's `repair` adds every escalated ticket again.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import redis
from sqlalchemy import select

from connector.db import session
from connector.models import TicketState

log = logging.getLogger(__name__)

COMPLETE = "*"  # no ticket id is "*": the adapters' ids are numbers or the PSA's own keys


def key(tenant_id: int) -> str:
    return f"baton:escalated-tickets:{tenant_id}"


def add(connection: redis.Redis, tenant_id: int, ticket_id: str) -> None:
    try:
        connection.sadd(key(tenant_id), ticket_id)
    except redis.RedisError as exc:
        log.warning(
            "escalated ticket not indexed; the sweep adds it",
            extra={"fields": {"tenant_id": tenant_id, "error": type(exc).__name__}},
        )


def _escalated(tenant_id: int | None = None) -> dict[int, list[str]]:
    query = select(TicketState.tenant_id, TicketState.ticket_id).where(TicketState.escalated)
    if tenant_id is not None:
        query = query.where(TicketState.tenant_id == tenant_id)
    found: dict[int, list[str]] = defaultdict(list)
    for tenant, ticket in session.execute(query):
        found[tenant].append(ticket)
    return found


def rebuild(connection: redis.Redis, tenant_id: int) -> None:
    """Fill the set from the database and mark it complete. Only adds: a ticket indexed by a
    concurrent record() stays."""
    tickets = _escalated(tenant_id).get(tenant_id, [])
    session.commit()  # the read ends here; the caller's work is committed already
    try:
        connection.sadd(key(tenant_id), COMPLETE, *tickets)
    except redis.RedisError as exc:
        log.warning(
            "escalated tickets not indexed", extra={"fields": {"error": type(exc).__name__}}
        )


def repair(connection: redis.Redis) -> int:
    """Add every escalated ticket to its tenant's set (those sets that exist: a missing one is
    rebuilt on its next delivery); returns how many tickets were looked at."""
    found = _escalated()
    session.commit()
    with connection.pipeline(transaction=False) as pipe:
        for tenant_id in found:
            pipe.exists(key(tenant_id))
        exists = pipe.execute()
        for (tenant_id, tickets), present in zip(found.items(), exists, strict=True):
            if present:
                pipe.sadd(key(tenant_id), *tickets)
        pipe.execute()
    return sum(len(t) for t in found.values())
