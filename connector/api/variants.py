"""Audience variants of a handoff, and publishing one to the PSA on an explicit request.

A rewrite is made once and kept in `handoff_variants`. The row is the lock: whoever inserts it
(state "pending"; the unique (escalation_id, audience) constraint refuses a second insert), or
wins the conditional UPDATE that takes over a stale one, makes the one model call; everyone
else polls the row until it is ready or the deadline has passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from adapters.base import AdapterError
from connector import escalations, tenant_patterns, tone
from connector import tenants as tenant_ops
from connector.api.escalations import load_escalation, record_action
from connector.auth import current_member, require_senior
from connector.db import session, utcnow
from connector.errors import APIError
from connector.logs import step
from connector.models import (
    AUDIENCES,
    TERMINAL_STATES,
    Escalation,
    Handoff,
    HandoffVariant,
    Member,
)

blp = Blueprint(
    "variants",
    __name__,
    url_prefix="/api/v1",
    description="Audience variants of a handoff (ticket notes, client update, email draft)",
)

POLL_SECONDS = 0.1
GRACE_SECONDS = 2.0  # past the AI deadline plus this, a "pending" row's maker is presumed dead


class VariantQuerySchema(Schema):
    refresh = fields.Boolean(
        load_default=False,
        metadata={"description": "engineer or admin: make a new rewrite instead of the kept one"},
    )


class VariantSchema(Schema):
    audience = fields.String(metadata={"description": "ticket_notes | client_update | email_draft"})
    text = fields.String()
    subject = fields.String(allow_none=True, metadata={"description": "email_draft only"})
    source = fields.String(
        metadata={
            "description": "saved (the handoff itself) | transformed (a rewrite of it) | "
            "generated (the handoff had to be generated on demand first)"
        }
    )
    model = fields.String(allow_none=True)
    created_at = fields.DateTime(allow_none=True)


class PublishedSchema(Schema):
    audience = fields.String()
    published_note_id = fields.String()
    published_at = fields.DateTime()
    visibility = fields.String(metadata={"description": "internal | client"})


@dataclass
class Claim:
    """A variant row this request must fill, and what to put back if the call fails."""

    row_id: int
    claimed_at: datetime
    previous_created_at: datetime | None  # the row held a rewrite before (refresh or stale)


def settings():
    return current_app.extensions["baton"].settings


def wait_seconds() -> float:
    return settings().ai_deadline_seconds + GRACE_SECONDS


def check_audience(audience: str) -> None:
    if audience not in AUDIENCES:
        raise APIError(
            404, "unknown_audience", f"no audience {audience!r}; one of {', '.join(AUDIENCES)}"
        )


# --- the handoff every variant is made from ------------------------------------------------


def _fresh(model: type, **where: Any) -> Any:
    """Read a row anew: end the transaction so a poll sees other requests' commits."""
    session.commit()
    query: Any = select(model).filter_by(**where).execution_options(populate_existing=True)
    return session.scalar(query)


def _claim_handoff(escalation: Escalation, handoff: Handoff | None) -> bool:
    """True if this request must generate the handoff: a legacy row, or a pending one whose
    job missed the deadline. The unique escalation_id, or a conditional UPDATE, lets one win."""
    if handoff is None:
        session.add(Handoff(escalation_id=escalation.id, state="pending", started_at=utcnow()))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
        return True
    if handoff.state != "pending" or not escalations.deadline_passed(escalation, handoff):
        return False
    won: int = session.execute(  # type: ignore[attr-defined]
        update(Handoff)
        .where(
            Handoff.id == handoff.id,
            Handoff.state == "pending",
            Handoff.started_at == handoff.started_at,
        )
        .values(started_at=utcnow())
    ).rowcount
    session.commit()
    return bool(won)


def _on_demand(escalation: Escalation, handoff: Handoff) -> bool:
    """A pending handoff being generated on demand: a claim restarted it after the escalation was
    recorded (record() starts the pipeline's at received_at), or its job missed the deadline."""
    if handoff.state != "pending":
        return False
    return handoff.started_at > escalation.received_at or escalations.deadline_passed(
        escalation, handoff
    )


def ensure_handoff(escalation: Escalation) -> tuple[Handoff, bool]:
    """A terminal handoff, and whether it had to be generated on demand (by this request or a
    concurrent one). A pipeline job still inside its deadline is waited for, not duplicated."""
    give_up = time.monotonic() + wait_seconds()
    on_demand = False
    while True:
        handoff = _fresh(Handoff, escalation_id=escalation.id)
        if handoff is not None and handoff.state in TERMINAL_STATES:
            return handoff, on_demand
        if handoff is None or _on_demand(escalation, handoff):
            on_demand = True
        if _claim_handoff(escalation, handoff):
            step(escalation.id, "handoff_on_demand")
            session.expire(escalation)  # generate() must see the claimed row, not a cached None
            escalations.generate(escalation.id, final_attempt=True)
            continue
        if time.monotonic() > give_up:
            raise APIError(
                503, "handoff_pending", "the handoff is still being prepared; try again shortly"
            )
        time.sleep(POLL_SECONDS)


# --- the variant row: claim, make, wait ------------------------------------------------------


def _stale(row: HandoffVariant, handoff: Handoff) -> bool:
    """Made before the handoff was (re)generated: its source text has changed."""
    return handoff.generated_at is not None and row.created_at < handoff.generated_at


def _abandoned(row: HandoffVariant) -> bool:
    return row.created_at < utcnow() - timedelta(seconds=wait_seconds())


def _insert_claim(escalation_id: int, audience: str) -> Claim | None:
    claimed_at = utcnow()
    row = HandoffVariant(
        escalation_id=escalation_id, audience=audience, state="pending", created_at=claimed_at
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # someone else is making it: wait for theirs
        return None
    return Claim(row.id, claimed_at, None)


def _takeover_claim(row: HandoffVariant) -> Claim | None:
    """Take an existing row (to refresh it, or remake a stale or abandoned one): one winner."""
    claimed_at = utcnow()
    won: int = session.execute(  # type: ignore[attr-defined]
        update(HandoffVariant)
        .where(
            HandoffVariant.id == row.id,
            HandoffVariant.state == row.state,
            HandoffVariant.created_at == row.created_at,
        )
        .values(state="pending", created_at=claimed_at)
    ).rowcount
    session.commit()
    if not won:
        return None
    previous = row.created_at if row.text and row.state != "pending" else None
    return Claim(row.id, claimed_at, previous)


def _make(
    claim: Claim, escalation: Escalation, handoff: Handoff, audience: str, source: str
) -> None:
    """The one model call for a claimed row; on failure nothing new is kept."""
    tenant = escalation.tenant
    try:
        made = tone.rewrite(
            audience,
            escalation,
            handoff,
            language=tenant.language,
            model=settings().tone_model,
            deadline_seconds=settings().ai_deadline_seconds,
            rules=tenant_patterns.rules_for(tenant),
        )
    except BaseException as exc:
        _release(claim)
        if isinstance(exc, tone.ToneUnavailable):
            step(escalation.id, "variant_failed", audience=audience, outcome=exc.outcome)
            raise APIError(
                503,
                "ai_unavailable",
                f"the {audience.replace('_', ' ')} could not be written right now "
                f"({exc.reason}); try again in a moment",
            ) from None
        raise
    session.execute(
        update(HandoffVariant)
        .where(HandoffVariant.id == claim.row_id, HandoffVariant.created_at == claim.claimed_at)
        .values(
            state="ready",
            text=made.text,
            subject=made.subject,
            source=source,
            model=made.model,
            created_at=utcnow(),
        )
    )
    session.commit()
    if made.redactions:
        step(escalation.id, "answer_redacted", audience=audience, redactions=dict(made.redactions))
    step(escalation.id, "variant_ready", audience=audience, source=source)


def _release(claim: Claim) -> None:
    """Put back what was there: the previous rewrite (refresh, stale), or no row at all."""
    session.rollback()
    mine = (HandoffVariant.id == claim.row_id, HandoffVariant.created_at == claim.claimed_at)
    if claim.previous_created_at is not None:
        session.execute(
            update(HandoffVariant)
            .where(*mine)
            .values(state="ready", created_at=claim.previous_created_at)
        )
    else:
        session.execute(delete(HandoffVariant).where(*mine))
    session.commit()


def rewritten_variant(
    escalation: Escalation, audience: str, *, refresh: bool = False
) -> HandoffVariant:
    """The kept rewrite, or a new one made by exactly one of any concurrent requests."""
    handoff, on_demand = ensure_handoff(escalation)
    if handoff.state != "ready":
        # A fallback is extracted from the ticket without AI: not material for a client.
        raise APIError(
            409,
            "handoff_fallback",
            f"the handoff was built without AI ({handoff.failure_reason or 'AI unavailable'}); "
            f"regenerate it, then ask for the {audience.replace('_', ' ')} again",
        )
    source = "generated" if on_demand else "transformed"
    asked_at = utcnow()
    give_up = time.monotonic() + wait_seconds()
    while True:
        row = _fresh(HandoffVariant, escalation_id=escalation.id, audience=audience)
        if row is None:
            claim = _insert_claim(escalation.id, audience)
        elif row.state == "ready" and not _stale(row, handoff):
            # A refresh is satisfied by any rewrite made after it was asked for.
            if not refresh or row.created_at >= asked_at:
                return row
            claim = _takeover_claim(row)
        elif row.state == "pending" and not _abandoned(row):
            claim = None
        else:
            claim = _takeover_claim(row)
        if claim is not None:
            _make(claim, escalation, handoff, audience, source)
            refresh = False
            continue
        if time.monotonic() > give_up:
            raise APIError(
                503,
                "variant_pending",
                f"the {audience.replace('_', ' ')} is still being written; try again shortly",
            )
        time.sleep(POLL_SECONDS)


def ticket_notes_view(escalation: Escalation) -> dict[str, Any]:
    handoff, on_demand = ensure_handoff(escalation)
    return {
        "audience": "ticket_notes",
        "text": tone.ticket_notes(escalation, handoff),
        "subject": None,
        "source": "generated" if on_demand else "saved",
        "model": handoff.model,
        "created_at": handoff.generated_at,
    }


def variant_view(row: HandoffVariant) -> dict[str, Any]:
    return {
        "audience": row.audience,
        "text": row.text,
        "subject": row.subject,
        "source": row.source,
        "model": row.model,
        "created_at": row.created_at,
    }


@blp.route("/escalations/<int:escalation_id>/variants/<audience>")
class Variant(MethodView):
    @blp.arguments(VariantQuerySchema, location="query")
    @blp.response(200, VariantSchema)
    @blp.alt_response(403, description="refresh asked for by a technician")
    @blp.alt_response(404, description="unknown escalation or audience")
    @blp.alt_response(409, description="the handoff is a fallback: regenerate it first")
    @blp.alt_response(503, description="the model could not answer now; nothing was kept")
    def get(self, args: dict[str, Any], escalation_id: int, audience: str):
        """The handoff for one audience: ticket notes at once, the rewrites made once and kept"""
        member = current_member()
        if args["refresh"]:
            require_senior(member)
        escalation = load_escalation(escalation_id, member)
        check_audience(audience)
        if audience == "ticket_notes":
            return ticket_notes_view(escalation)
        return variant_view(rewritten_variant(escalation, audience, refresh=args["refresh"]))


# --- publishing to the PSA -------------------------------------------------------------------


def _ticket_notes_row(escalation: Escalation, handoff: Handoff) -> HandoffVariant:
    """The row that remembers where the ticket notes were published (made on first publish)."""
    row = _fresh(HandoffVariant, escalation_id=escalation.id, audience="ticket_notes")
    if row is not None:
        return row
    session.add(
        HandoffVariant(
            escalation_id=escalation.id,
            audience="ticket_notes",
            state="ready",
            text=tone.ticket_notes(escalation, handoff),
            source="saved",
            model=handoff.model,
            created_at=utcnow(),
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
    return _fresh(HandoffVariant, escalation_id=escalation.id, audience="ticket_notes")


def _claim_publication(row: HandoffVariant) -> bool:
    """One conditional UPDATE: of two publish clicks at once, one posts, the other gets 409."""
    won: int = session.execute(  # type: ignore[attr-defined]
        update(HandoffVariant)
        .where(HandoffVariant.id == row.id, HandoffVariant.published_at.is_(None))
        .values(published_at=utcnow())
    ).rowcount
    session.commit()
    return bool(won)


def _unclaim_publication(row_id: int) -> None:
    session.rollback()
    session.execute(
        update(HandoffVariant).where(HandoffVariant.id == row_id).values(published_at=None)
    )
    session.commit()


def _already_published(row: HandoffVariant) -> APIError:
    row = _fresh(HandoffVariant, id=row.id)
    where = row.published_note_id
    message = (
        f"the {row.audience.replace('_', ' ')} is already on the ticket (note {where})"
        if where
        else f"the {row.audience.replace('_', ' ')} is being published right now"
    )
    return APIError(409, "already_published", message, published_note_id=where)


def _post(escalation: Escalation, row: HandoffVariant) -> str:
    if row.audience == "ticket_notes":
        note_id = escalations.write_back(escalation.id)  # the pipeline's own exactly-once path
        if note_id is None:
            raise AdapterError("the handoff is not ready to be written")
        return note_id
    words = tone.FALLBACK_SUBJECT.get(escalation.tenant.language, tone.FALLBACK_SUBJECT["en"])
    return tenant_ops.adapter(escalation.tenant).post_note(
        escalation.ticket_id, row.text, visibility="client", title=words
    )


def record_published(escalation: Escalation, member: Member, row: HandoffVariant) -> None:
    record_action(
        escalation, member, "variant_published", f"{row.audience} as note {row.published_note_id}"
    )


@blp.route("/escalations/<int:escalation_id>/variants/<audience>/publish")
class PublishVariant(MethodView):
    @blp.response(201, PublishedSchema)
    @blp.alt_response(400, description="an email draft is copied, not posted")
    @blp.alt_response(403, description="technicians cannot publish")
    @blp.alt_response(404, description="unknown escalation or audience")
    @blp.alt_response(409, description="already on the ticket: the answer says which note")
    @blp.alt_response(502, description="the PSA refused or could not be reached")
    def post(self, escalation_id: int, audience: str):
        """Write a variant to the PSA: ticket notes internal, client update visible to the client"""
        member = current_member()
        require_senior(member)
        escalation = load_escalation(escalation_id, member)
        check_audience(audience)
        if audience == "email_draft":
            raise APIError(
                400, "not_publishable", "an email draft is copied into an email, not posted"
            )
        if audience == "ticket_notes":
            if escalation.note_id:
                raise APIError(
                    409,
                    "already_published",
                    f"the handoff is already on the ticket as note {escalation.note_id}",
                    note_id=escalation.note_id,
                )
            handoff, _ = ensure_handoff(escalation)
            row = _ticket_notes_row(escalation, handoff)
        else:
            row = rewritten_variant(escalation, audience)
        if not _claim_publication(row):
            raise _already_published(row)
        try:
            note_id = _post(escalation, row)
        except BaseException as exc:
            _unclaim_publication(row.id)  # nothing was written: a later click may try again
            if not isinstance(exc, AdapterError):
                raise
            step(escalation.id, "variant_publish_failed", audience=audience, error=str(exc)[:300])
            raise APIError(502, "psa_error", f"the PSA did not take the note: {exc}") from None
        row = _fresh(HandoffVariant, id=row.id)
        row.published_note_id = note_id
        session.commit()
        record_published(escalation, member, row)
        step(escalation.id, "variant_published", audience=audience, note_id=note_id)
        return {
            "audience": audience,
            "published_note_id": note_id,
            "published_at": row.published_at,
            "visibility": "internal" if audience == "ticket_notes" else "client",
        }
