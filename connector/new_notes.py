"""A stale handoff says so: the notes added to its ticket since the handoff was written.

A later save of an escalated ticket reaches Baton as a webhook that records nothing ("already
escalated"); it queues a light job that re-reads the ticket's notes through the adapter and
counts those the snapshot the handoff was written from did not hold, leaving out Baton's own.
The panel shows the count with Regenerate; only a person's click makes a new call.
"""

from __future__ import annotations

import logging

from rq.job import JobStatus
from sqlalchemy import select, update

from connector import events
from connector import tenants as tenant_ops
from connector.db import session
from connector.dispatch import enqueue as enqueue_job
from connector.escalations import runtime
from connector.handoff_text import note_marker
from connector.logs import step
from connector.models import TERMINAL_STATES, Escalation, Handoff, HandoffVariant
from connector.queue import NOTE_COUNT, NOTE_COUNT_AGAIN, job_status


class NotYetWritten(Exception):
    """The handoff is still being written: RQ counts again later, against its new snapshot."""


def enqueue(escalation_id: int) -> bool:
    """Queue a count unless one is waiting (it will see this change too); behind one already
    running, queue a second. Never raises: the webhook that asked has been answered already."""
    connection = runtime().redis
    try:
        for kind in (NOTE_COUNT, NOTE_COUNT_AGAIN):
            if job_status(connection, kind.job_id(escalation_id)) == JobStatus.STARTED:
                continue
            return enqueue_job(connection, kind, escalation_id, replace_dead=True)
    except Exception as exc:  # the sweep does not repair this: the next change queues again
        step(escalation_id, "notes_enqueue_failed", level=logging.WARNING, error=type(exc).__name__)
    return False


def count(escalation_id: int) -> int | None:
    """Count the ticket's new notes, save the count on the handoff and tell the panel."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.handoff is None:
        return None
    handoff = escalation.handoff
    if handoff.state not in TERMINAL_STATES:
        raise NotYetWritten(f"handoff of escalation {escalation_id} is {handoff.state}")
    known = (escalation.context_snapshot or {}).get("note_ids")
    if known is None:  # written without reading the ticket, or before Baton kept the ids
        return None
    started_at = handoff.started_at
    ours = _baton_note_ids(escalation)
    marker = note_marker(escalation.id)
    notes = tenant_ops.adapter(escalation.tenant).fetch_context(escalation.ticket_id).notes
    new = sum(1 for n in notes if n.id not in known and n.id not in ours and marker not in n.text)
    changed: int = session.execute(  # type: ignore[attr-defined]
        update(Handoff)
        .where(
            Handoff.id == handoff.id,
            Handoff.started_at == started_at,  # not a handoff regenerated meanwhile
            Handoff.new_notes != new,
        )
        .values(new_notes=new)
    ).rowcount
    session.commit()
    step(escalation_id, "notes_counted", new=new)
    if changed:
        events.publish(
            runtime().redis,
            escalation.tenant_id,
            "handoff.stale",
            {"escalation_id": escalation_id, "new_notes": new},
        )
    return new


def _baton_note_ids(escalation: Escalation) -> set[str]:
    """The notes Baton itself wrote on the ticket: the handoff and published variants."""
    published = session.scalars(
        select(HandoffVariant.published_note_id).where(
            HandoffVariant.escalation_id == escalation.id,
            HandoffVariant.published_note_id.is_not(None),
        )
    )
    return {note_id for note_id in (escalation.note_id, *published) if note_id}
