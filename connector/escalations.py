"""The one pipeline every escalation goes through, from a webhook or from the panel.

record() writes the row first (the database is the source of truth) and commits before
anything is enqueued; generate() and write_back() are what the RQ jobs run.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from adapters.base import AdapterError, TicketEvent
from connector import context as context_builder
from connector import events, notify, summary, tenant_patterns
from connector import tenants as tenant_ops
from connector.db import insert_if_absent, session, utcnow
from connector.dispatch import enqueue as enqueue_job
from connector.handoff_text import note_marker, render_note
from connector.logs import step
from connector.models import TERMINAL_STATES, Escalation, Handoff, Member, Tenant, TicketState
from connector.queue import HANDOFF, WRITE_BACK
from connector.redaction import TenantRules, redact

log = logging.getLogger(__name__)


@dataclass
class Recorded:
    escalation: Escalation | None
    created: bool
    ignored: str | None = None
    changed: int | None = None  # the escalation of an escalated ticket this delivery changed


def runtime():
    return current_app.extensions["baton"]


def is_escalation_status(tenant: Tenant, status: str) -> bool:
    return status.strip().casefold() in tenant_ops.trigger_values(tenant)


def find_by_delivery(tenant: Tenant, delivery_key: str) -> Escalation | None:
    return session.scalar(
        select(Escalation).where(
            Escalation.tenant_id == tenant.id, Escalation.delivery_key == delivery_key
        )
    )


def _ensure_ticket_state(tenant: Tenant, ticket_id: str) -> None:
    insert_if_absent(
        TicketState,
        ["tenant_id", "ticket_id"],
        tenant_id=tenant.id,
        ticket_id=ticket_id,
        status="",
        escalated=False,
        updated_at=utcnow(),
    )


def record(
    tenant: Tenant,
    event: TicketEvent,
    *,
    reason: str | None = None,
    source: str = "webhook",
    member: Member | None = None,
) -> Recorded:
    """Record an escalation if the ticket is entering an escalated status; commit; no enqueue."""
    # PSA text may hold NUL characters, which PostgreSQL text cannot store.
    event = replace(event, **{f.name: _text(getattr(event, f.name)) for f in fields(event)})
    reason = _text(reason) if reason else reason
    existing = find_by_delivery(tenant, event.delivery_key)
    if existing is not None:
        return Recorded(existing, created=False)
    _ensure_ticket_state(tenant, event.ticket_id)
    escalating = is_escalation_status(tenant, event.status) and (
        not event.reported_status or is_escalation_status(tenant, event.reported_status)
    )
    # One conditional UPDATE decides "entering": of two concurrent deliveries, one flips it.
    flipped: int = session.execute(  # type: ignore[attr-defined]
        update(TicketState)
        .where(
            TicketState.tenant_id == tenant.id,
            TicketState.ticket_id == event.ticket_id,
            TicketState.escalated.is_(not escalating),
        )
        .values(escalated=escalating, status=event.status, updated_at=utcnow())
    ).rowcount
    if not escalating:
        session.commit()
        # The configured statuses beside the one received, so that a mismatch shows in the audit.
        ignored = (
            f"status {event.status!r} is not an escalation status "
            f"(the trigger is {tenant_ops.describe_trigger(tenant)})"
        )
        return Recorded(None, created=False, ignored=ignored)
    if not flipped:
        session.commit()
        # A concurrent copy of this same delivery may be the one that flipped it.
        existing = find_by_delivery(tenant, event.delivery_key)
        if existing is not None:
            return Recorded(existing, created=False)
        # A later save of the escalated ticket (a new note, say): its handoff may be stale.
        return Recorded(
            None,
            created=False,
            ignored="already escalated",
            changed=latest_escalation_id(tenant, event.ticket_id),
        )
    escalation = Escalation(
        tenant_id=tenant.id,
        ticket_id=event.ticket_id,
        ticket_number=event.ticket_number or event.ticket_id,
        ticket_title=event.title,
        escalated_by=member.psa_member_id if member else event.actor,
        escalated_by_member_id=member.id if member else _member_id(tenant, event.actor),
        reason=reason,
        delivery_key=event.delivery_key,
        source=source,
        received_at=utcnow(),
    )
    escalation.handoff = Handoff(state="pending", started_at=escalation.received_at)
    session.add(escalation)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = find_by_delivery(tenant, event.delivery_key)
        if existing is None:
            raise
        return Recorded(existing, created=False)
    step(escalation.id, "recorded", tenant=tenant.slug, ticket=event.ticket_id, source=source)
    events.publish(
        runtime().redis,
        tenant.id,
        "escalation.created",
        {"escalation_id": escalation.id, "ticket_id": event.ticket_id, "source": source},
    )
    return Recorded(escalation, created=True)


def _text(value: str) -> str:
    return value.replace("\x00", "")


def latest_escalation_id(tenant: Tenant, ticket_id: str) -> int | None:
    return session.scalar(
        select(Escalation.id)
        .where(Escalation.tenant_id == tenant.id, Escalation.ticket_id == ticket_id)
        .order_by(Escalation.received_at.desc(), Escalation.id.desc())
        .limit(1)
    )


def _member_id(tenant: Tenant, psa_member_id: str) -> int | None:
    if not psa_member_id:
        return None
    return session.scalar(
        select(Member.id).where(
            Member.tenant_id == tenant.id, Member.psa_member_id == psa_member_id
        )
    )


def enqueue_pipeline(escalation_id: int, *, replace_dead: bool = False) -> bool:
    enqueued = enqueue_job(runtime().redis, HANDOFF, escalation_id, replace_dead=replace_dead)
    if enqueued:
        step(escalation_id, "enqueued")
    # The seniors hear at once, on their own queue; it never raises into the handoff's path.
    notify.enqueue(escalation_id, replace_dead=replace_dead)
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
    material = context_builder.build_source(
        ticket_context,
        reason=escalation.reason,
        escalated_by=escalation.escalated_by,
        budget_tokens=settings.context_budget_tokens,
        rules=tenant_patterns.rules_for(tenant),
    )
    escalation.context_snapshot = material.snapshot
    escalation.context_tokens = material.tokens
    handoff.partial = None  # this call's fields replace whatever an earlier try showed
    handoff.new_notes = 0  # counted against this snapshot from now on
    if not escalation.reason and material.snapshot.get("reason"):
        escalation.reason = material.snapshot["reason"]
    if ticket_context.ticket.url and not escalation.ticket_url:
        escalation.ticket_url = ticket_context.ticket.url
    if ticket_context.ticket.title and not escalation.ticket_title:
        escalation.ticket_title = ticket_context.ticket.title
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
    "summary_prose", "what_we_know", "likely_cause", "suggested_steps", "tried", "open_questions"
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
