"""The one pipeline every escalation goes through, from a webhook or from the panel.

record() writes the row first (the database is the source of truth) and commits before
anything is enqueued; generate() and write_back() are what the RQ jobs run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import redis
from flask import current_app
from sqlalchemy import select, update

from adapters.base import AdapterError, TicketEvent
from connector import context as context_builder
from connector import (
    escalated_index,
    events,
    notify,
    recording,
    related,
    summary,
    tenant_patterns,
)
from connector import tenants as tenant_ops
from connector.db import session, utcnow
from connector.dispatch import enqueue as enqueue_job
from connector.handoff_text import note_marker, render_note
from connector.logs import step
from connector.models import TERMINAL_STATES, Escalation, Handoff, Member
from connector.queue import HANDOFF, NOTIFICATIONS, WRITE_BACK, enqueue_new
from connector.redaction import TenantRules, redact
from connector.tenants import TenantRef

log = logging.getLogger(__name__)


@dataclass
class Recorded:
    escalation_id: int | None
    created: bool
    ignored: str | None = None
    changed: int | None = None  # the escalation of an escalated ticket this delivery changed

    @property
    def escalation(self) -> Escalation | None:
        """The row, read when asked for: the webhook needs only its id."""
        return session.get(Escalation, self.escalation_id) if self.escalation_id else None


def runtime():
    return current_app.extensions["baton"]


def is_escalation_status(tenant: TenantRef, status: str) -> bool:
    return status.strip().casefold() in tenant_ops.trigger_values(tenant)


def is_escalating(tenant: TenantRef, event: TicketEvent) -> bool:
    """The delivery puts the ticket in an escalated status (an unsigned delivery's reported
    status must agree with the one read back)."""
    return is_escalation_status(tenant, event.status) and (
        not event.reported_status or is_escalation_status(tenant, event.reported_status)
    )


def ignored_reason(tenant: TenantRef, event: TicketEvent) -> str:
    # The configured statuses beside the one received, so that a mismatch shows in the audit.
    return (
        f"status {event.status!r} is not an escalation status "
        f"(the trigger is {tenant_ops.describe_trigger(tenant)})"
    )


def find_by_delivery(tenant: TenantRef, delivery_key: str) -> int | None:
    return session.scalar(
        select(Escalation.id).where(
            Escalation.tenant_id == tenant.id, Escalation.delivery_key == delivery_key
        )
    )


# The audit row of the delivery, given its outcome: written in the same commit.
Audit = Callable[[Recorded], dict[str, Any]]


def record(
    tenant: TenantRef,
    event: TicketEvent,
    *,
    reason: str | None = None,
    source: str = "webhook",
    member: Member | None = None,
    audit: Audit | None = None,
    indexed: bool = False,
) -> Recorded:
    """Record an escalation if the ticket is entering an escalated status, in one transaction
    with `audit`'s row (it is told the outcome); commit; no enqueue. `indexed`: the caller has
    put the ticket in the escalated index already."""
    # PSA text may hold NUL characters, which PostgreSQL text cannot store.
    texts: dict[str, Any] = {f.name: getattr(event, f.name) for f in fields(event)}
    cleaned: dict[str, Any] = {k: _text(v) for k, v in texts.items() if isinstance(v, str)}
    event = replace(event, **cleaned)
    reason = _text(reason) if reason else reason
    params = {
        "b_tenant": tenant.id,
        "b_ticket": event.ticket_id,
        "b_status": event.status,
        "b_key": event.delivery_key,
        "b_at": utcnow(),
    }
    if not is_escalating(tenant, event):
        session.connection().execute(recording.LEAVE, params)
        return _commit(Recorded(None, created=False, ignored=ignored_reason(tenant, event)), audit)
    # Before the commit that may mark it escalated: the index stays a superset of the table.
    if not indexed:
        escalated_index.add(runtime().redis, tenant.id, event.ticket_id)
    params |= {
        "b_number": event.ticket_number or event.ticket_id,
        "b_title": event.title,
        "b_by": member.psa_member_id if member else event.actor,
        "b_member": member.id if member else None,
        "b_actor": event.actor or None,
        "b_reason": reason,
        "b_source": source,
    }
    escalation_id = _record_new(params, audit)
    if escalation_id is not None:
        step(escalation_id, "recorded", tenant=tenant.slug, ticket=event.ticket_id, source=source)
        return Recorded(escalation_id, created=True)
    # A copy of this same delivery, concurrent or late, or a later save of the escalated
    # ticket (a new note, say), whose handoff may be stale.
    existing = find_by_delivery(tenant, event.delivery_key)
    if existing is not None:
        return _commit(Recorded(existing, created=False), audit)
    changed = latest_escalation_id(tenant, event.ticket_id)
    return _commit(
        Recorded(None, created=False, ignored="already escalated", changed=changed), audit
    )


def _record_new(params: dict[str, Any], audit: Audit | None) -> int | None:
    """The new escalation, its pending handoff and the audit row, committed; None (nothing
    written) when the ticket did not enter its escalated spell."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Its own connection in autocommit: the one statement is the whole transaction.
        values = dict(params)
        if audit is not None:  # the row of an accepted delivery; its id is the new row's
            row = audit(Recorded(None, created=True))
            values |= {f"a_{column}": row[column] for column in recording.AUDIT_COLUMNS}
        with runtime().engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
            return own.execute(recording.new_escalation(bool(audit)), values).scalar()
    connection = session.connection()
    if connection.execute(recording.enter(dialect), params).first() is None:
        return None
    escalation_id = connection.execute(recording.insert_escalation(dialect), params).scalar()
    if escalation_id is None:  # the key was recorded for another ticket: nothing is written
        session.rollback()
        return None
    connection.execute(recording.INSERT_HANDOFF, params | {"b_escalation": escalation_id})
    _commit(Recorded(escalation_id, created=True), audit)
    return escalation_id


def _commit(recorded: Recorded, audit: Audit | None) -> Recorded:
    if audit is not None:
        session.connection().execute(recording.AUDIT.insert(), audit(recorded))
    session.commit()
    return recorded


def _text(value: str) -> str:
    return value.replace("\x00", "")


def latest_escalation_id(tenant: TenantRef, ticket_id: str) -> int | None:
    return session.scalar(
        select(Escalation.id)
        .where(Escalation.tenant_id == tenant.id, Escalation.ticket_id == ticket_id)
        .order_by(Escalation.received_at.desc(), Escalation.id.desc())
        .limit(1)
    )


def start_pipeline(escalation_id: int, *, tenant_id: int, ticket_id: str, source: str) -> None:
    """After the commit that recorded it, in one Redis pipeline: the panels hear of it, then
    both jobs are queued."""

    def announce(pipe: redis.client.Pipeline) -> None:
        event = {"escalation_id": escalation_id, "ticket_id": ticket_id, "source": source}
        events.publish(pipe, tenant_id, "escalation.created", event)

    try:
        handoff, _notifications = enqueue_new(
            runtime().redis, (HANDOFF, NOTIFICATIONS), escalation_id, tenant_id=tenant_id,
            before=announce,
        )  # fmt: skip
    except Exception as exc:  # the row is committed: the sweeper will enqueue it
        step(escalation_id, "enqueue_failed", level=logging.WARNING, error=type(exc).__name__)
        return
    if handoff:
        step(escalation_id, "enqueued")


def enqueue_pipeline(
    escalation_id: int, *, tenant_id: int | None = None, replace_dead: bool = False
) -> bool:
    """`tenant_id` when the caller knows it (the row is then not read for it)."""
    connection = runtime().redis
    enqueued = enqueue_job(
        connection, HANDOFF, escalation_id, tenant_id=tenant_id, replace_dead=replace_dead
    )
    if enqueued:
        step(escalation_id, "enqueued")
    # The seniors hear at once, on their own queue; it never raises into the handoff's path.
    notify.enqueue(escalation_id, tenant_id=tenant_id, replace_dead=replace_dead)
    return enqueued


def enqueue_write_back(escalation_id: int, *, replace_dead: bool = False) -> bool:
    return enqueue_job(runtime().redis, WRITE_BACK, escalation_id, replace_dead=replace_dead)


def deadline_passed(escalation: Escalation, handoff: Handoff) -> bool:
    settings = runtime().settings
    started = max(handoff.started_at, escalation.received_at)
    return utcnow() > started + timedelta(seconds=settings.ai_deadline_seconds)


def generate(escalation_id: int, *, final_attempt: bool = True) -> Handoff | None:
    """Read the ticket, make the one AI call, save a terminal handoff, publish, then write back.

    A PSA failure is raised for RQ to retry while the deadline allows; on the last try (or past
    the deadline) the handoff is finished from what Baton has, so it is never left pending.
    """
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        step(escalation_id, "missing", level=logging.WARNING)
        return None
    handoff = escalation.handoff or Handoff(escalation_id=escalation.id, state="pending")
    if escalation.handoff is None:
        session.add(handoff)
        session.commit()
    if handoff.state in TERMINAL_STATES:
        enqueue_write_back(escalation.id)
        return handoff
    tenant = escalation.tenant
    settings = runtime().settings
    try:
        ticket_context = tenant_ops.adapter(tenant).fetch_context(escalation.ticket_id)
        step(escalation.id, "context_fetched", notes=len(ticket_context.notes))
    except AdapterError as exc:
        step(escalation.id, "context_failed", level=logging.WARNING, error=str(exc)[:300])
        if exc.retryable and not final_attempt and not deadline_passed(escalation, handoff):
            raise
        # Without the ticket the model would only guess: finish honestly, without a call.
        snapshot = {"ticket": {"title": escalation.ticket_title}, "reason": escalation.reason or ""}
        result = summary.fallback(snapshot, f"the ticket could not be read from the PSA ({exc})")
        if finish(escalation, result):
            enqueue_write_back(escalation.id)
        session.refresh(handoff)
        return handoff
    rules = tenant_patterns.rules_for(tenant)

    def build(earlier: list[dict[str, Any]]) -> context_builder.SourceMaterial:
        return context_builder.build_source(
            ticket_context,
            reason=escalation.reason,
            escalated_by=escalation.escalated_by,
            budget_tokens=settings.context_budget_tokens,
            rules=rules,
            earlier=earlier,
        )

    material = build([])
    if ticket_context.ticket.title and not escalation.ticket_title:
        escalation.ticket_title = ticket_context.ticket.title
    # Seen before: the search reads the redacted material, so it is built first; when earlier
    # escalations are found, the material is built again with them, within the same budget.
    related.index(escalation, material.snapshot)
    session.flush()
    earlier = [related.view(e) for e in related.find(session, escalation)]
    escalation.related = earlier
    if earlier:
        material = build(earlier)
    step(escalation.id, "related_found", related=[e["escalation_id"] for e in earlier])
    escalation.context_snapshot = material.snapshot
    escalation.context_tokens = material.tokens
    handoff.partial = None  # this call's fields replace whatever an earlier try showed
    handoff.new_notes = 0  # counted against this snapshot from now on
    if not escalation.reason and material.snapshot.get("reason"):
        escalation.reason = material.snapshot["reason"]
    if ticket_context.ticket.url and not escalation.ticket_url:
        escalation.ticket_url = ticket_context.ticket.url
    session.commit()
    step(
        escalation.id, "context_built", tokens=material.tokens, redactions=dict(material.redactions)
    )

    result = summary.generate(
        material.text,
        material.snapshot,
        language=tenant.language,
        model=settings.summary_model,
        deadline_seconds=settings.ai_deadline_seconds,
        tenant_id=tenant.id,
        escalation_id=escalation.id,
        on_partial=PartialSaver(escalation, handoff.started_at),
        stream=settings.ai_stream,
    )
    step(escalation.id, "handoff_generated", source=result.source, reason=result.failure_reason)
    if not finish(escalation, result):
        session.refresh(handoff)
        return handoff
    enqueue_write_back(escalation.id)
    return handoff


ANSWER_FIELDS = (
    "summary_prose", "what_we_know", "likely_cause", "suggested_steps", "tried", "open_questions",
    "seen_before",
)  # fmt: skip


def _scrub(value: Any, rules: TenantRules | None, removed: Counter[str]) -> Any:
    """Every string of a model answer (prose, list items, {"action", "result"}) redacted."""
    if isinstance(value, str):
        redacted = redact(value, rules)
        removed.update(redacted.kinds)
        return redacted.text
    if isinstance(value, list):
        return [_scrub(item, rules, removed) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, rules, removed) for key, item in value.items()}
    return value


def without_secrets(escalation: Escalation, result: summary.HandoffResult) -> summary.HandoffResult:
    """Defence in depth: the answer goes through the same detector as the ticket did, so a
    secret the model echoes (or one that slipped past the context) is never saved, shown or
    written to the PSA. What it removes is logged by kind, never by value."""
    rules = tenant_patterns.rules_for(escalation.tenant)
    removed: Counter[str] = Counter()
    cleaned = replace(
        result, **{name: _scrub(getattr(result, name), rules, removed) for name in ANSWER_FIELDS}
    )
    if removed:
        step(escalation.id, "answer_redacted", redactions=dict(removed))
    return cleaned


class PartialSaver:
    """Saves the fields the model has written so far on the pending handoff of this attempt
    (a regenerate or the sweeper may have moved on: then nothing changes), and tells the
    panel, which re-reads them. summary.generate() decides how often."""

    def __init__(self, escalation: Escalation, started_at: datetime):
        self.escalation_id = escalation.id
        self.tenant_id = escalation.tenant_id
        self.started_at = started_at
        self.saves = 0
        self.rules = tenant_patterns.rules_for(escalation.tenant)

    def __call__(self, fields: dict[str, Any]) -> None:
        # Shown while the model writes, so cleaned like the final answer (counted there).
        fields = _scrub(fields, self.rules, Counter())
        saved: int = session.execute(  # type: ignore[attr-defined]
            update(Handoff)
            .where(
                Handoff.escalation_id == self.escalation_id,
                Handoff.state == "pending",
                Handoff.started_at == self.started_at,
            )
            .values(partial=fields)
        ).rowcount
        session.commit()
        if not saved:
            return
        self.saves += 1
        if self.saves == 1:
            step(self.escalation_id, "handoff_writing", first=sorted(fields))
        events.publish(
            runtime().redis,
            self.tenant_id,
            "handoff.writing",
            {"escalation_id": self.escalation_id, "fields": sorted(fields)},
        )


def finish(escalation: Escalation, result: summary.HandoffResult) -> bool:
    """Save a terminal handoff only if it is still pending (the sweeper may have finished it).
    A fallback keeps the fields the model had shown, marked unfinished; a ready one replaces
    them with the validated answer."""
    result = without_secrets(escalation, result)
    given = set((escalation.context_snapshot or {}).get("earlier") or [])
    # Only an escalation the model was given can be cited: "#117045" and "117045" alike.
    cited = [c for c in result.seen_before if c.get("ticket", "").lstrip("#").strip() in given]
    replaced = {"partial": None} if result.source == "ai" else {}
    saved: int = session.execute(  # type: ignore[attr-defined]
        update(Handoff)
        .where(Handoff.escalation_id == escalation.id, Handoff.state == "pending")
        .values(
            state=result.state,
            source=result.source,
            summary_prose=result.summary_prose,
            what_we_know=result.what_we_know,
            likely_cause=result.likely_cause,
            suggested_steps=result.suggested_steps,
            confidence=result.confidence,
            tried=result.tried,
            open_questions=result.open_questions,
            seen_before=cited,
            model=result.model,
            generated_at=utcnow(),
            failure_reason=result.failure_reason,
            **replaced,
        )
    ).rowcount
    session.commit()
    if saved:
        events.publish(
            runtime().redis,
            escalation.tenant_id,
            f"handoff.{result.state}",
            {"escalation_id": escalation.id, "state": result.state},
        )
        step(escalation.id, "handoff_saved", state=result.state)
        notify.enqueue_follow_up(escalation)  # chat messages sent so far get the likely cause
    return bool(saved)


def write_back(escalation_id: int) -> str | None:
    """Post the handoff as one internal note, exactly once (the note id is stored and checked)."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.note_id:
        return escalation.note_id if escalation else None
    handoff = escalation.handoff
    if handoff is None or handoff.state not in TERMINAL_STATES:
        return None
    psa = tenant_ops.adapter(escalation.tenant)
    note_id = psa.find_note(escalation.ticket_id, note_marker(escalation.id))
    if note_id is None:
        note_id = psa.post_note(
            escalation.ticket_id,
            render_note(escalation, handoff),
            visibility="internal",
            title="Baton escalation handoff",
        )
        step(escalation.id, "note_written", note_id=note_id)
    else:
        step(escalation.id, "note_found", note_id=note_id)
    escalation.note_id = note_id
    escalation.note_written_at = utcnow()
    session.commit()
    return note_id
