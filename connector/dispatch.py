"""Which queue an escalation's job goes on: its tenant's, in the job's tier (issue 19)."""

from __future__ import annotations

import redis

from connector.db import session
from connector.models import Escalation
from connector.queue import JobKind, enqueue_job


def enqueue(
    connection: redis.Redis,
    kind: JobKind,
    escalation_id: int,
    *,
    tenant_id: int | None = None,
    replace_dead: bool = False,
) -> bool:
    """Enqueue the escalation's job of this kind on its tenant's queue (`tenant_id` when the
    caller knows it); True when enqueued."""
    if tenant_id is None:
        escalation = session.get(Escalation, escalation_id)  # usually in the session already
        tenant_id = escalation.tenant_id if escalation is not None else None
    return enqueue_job(
        connection, kind, escalation_id, tenant_id=tenant_id, replace_dead=replace_dead
    )
