"""What fixed it: the resolution of an escalated ticket, read from the PSA or written by a senior.

A webhook saying the ticket is closed (TicketEvent.closed) queues a light job that reads the
resolution through the adapter (`fetch_resolution`) and stores it, redacted like everything
else Baton keeps, with who resolved it and when, on the ticket's latest escalation. A senior
may write or correct it on the handoff screen; their words are kept over a later PSA read.
"""

from __future__ import annotations

import logging

from connector import events
from connector import tenants as tenant_ops
from connector.db import session, utcnow
from connector.escalations import latest_escalation_id, runtime
from connector.logs import step
from connector.models import Escalation, Member, Tenant
from connector.queue import RESOLUTION, enqueue_job
from connector.redaction import redact
from connector.related import RESOLUTION_CHARS
from connector.tenant_patterns import rules_for
from connector.tenants import TenantRef

PSA, PANEL = "psa", "panel"


def enqueue(tenant: TenantRef, ticket_id: str) -> int | None:
    """Queue the read for the ticket's latest escalation, if it has one. Never raises: the
    webhook that asked has been answered already, and the PSA's next save asks again."""
    escalation_id = latest_escalation_id(tenant, ticket_id)
    if escalation_id is None:
        return None
    try:
        # A ticket closed, reopened and closed again is read again: the old job is replaced.
        enqueue_job(
            runtime().redis, RESOLUTION, escalation_id, tenant_id=tenant.id, replace_dead=True
        )
    except Exception as exc:
        step(escalation_id, "resolution_enqueue_failed", level=logging.WARNING,
             error=type(exc).__name__)  # fmt: skip
    return escalation_id


def capture(escalation_id: int) -> str | None:
    """Read the resolution from the PSA and store it; the outcome, for the job's result."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        return None
    found = tenant_ops.adapter(escalation.tenant).fetch_resolution(escalation.ticket_id)
    if found is None:
        step(escalation_id, "resolution_not_closed")
        return "open"
    if escalation.resolution_source == PANEL:
        step(escalation_id, "resolution_kept", source=PANEL)  # the senior's own words stay
        return "kept"
    text = _clean(escalation.tenant, found.text)
    escalation.resolution = text or None
    escalation.resolved_by = found.resolved_by[:200]
    escalation.resolved_at = found.resolved_at or utcnow()
    escalation.resolution_source = PSA
    session.commit()
    step(escalation_id, "resolution_saved", source=PSA, chars=len(text))
    _publish(escalation)
    return "saved"


def write(escalation: Escalation, member: Member, text: str) -> Escalation:
    """A senior's "What fixed it", redacted; empty text clears it."""
    cleaned = _clean(escalation.tenant, text)
    escalation.resolution = cleaned or None
    escalation.resolved_by = member.name[:200] if cleaned else ""
    escalation.resolved_at = utcnow() if cleaned else None
    escalation.resolution_source = PANEL if cleaned else None
    session.commit()
    step(escalation.id, "resolution_saved", source=PANEL, member=member.id, chars=len(cleaned))
    _publish(escalation)
    return escalation


def _clean(tenant: Tenant, text: str) -> str:
    text = text.replace("\x00", "").strip()[:RESOLUTION_CHARS]
    return redact(text, rules_for(tenant)).text.strip() if text else ""


def _publish(escalation: Escalation) -> None:
    events.publish(
        runtime().redis,
        escalation.tenant_id,
        "escalation.resolved",
        {"escalation_id": escalation.id},
    )
