"""The panel's JSON API: escalations of the calling member's tenant only."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from adapters.base import AdapterError, TicketEvent
from connector import escalations, events, resolutions
from connector import tenants as tenant_ops
from connector.auth import current_member, require_senior
from connector.db import insert_if_absent, session, utcnow
from connector.errors import APIError
from connector.handoff_text import redaction_note
from connector.logs import step
from connector.models import Action, Escalation, EscalationRead, Handoff, Member, TicketState

blp = Blueprint(
    "escalations",
    __name__,
    url_prefix="/api/v1",
    description="Escalations and handoffs (member bearer token or panel session)",
)


class TicketRefSchema(Schema):
    id = fields.String()
    number = fields.String()
    title = fields.String()
    url = fields.String()


class TriedSchema(Schema):
    action = fields.String()
    result = fields.String(metadata={"description": "what it showed; empty when not recorded"})


class SeenBeforeCiteSchema(Schema):
    ticket = fields.String(metadata={"description": "the earlier escalation's ticket number"})
    why = fields.String()


class HandoffSchema(Schema):
    state = fields.String(metadata={"description": "pending | ready | fallback"})
    source = fields.String(allow_none=True, metadata={"description": "ai | fallback"})
    writing = fields.Boolean(
        metadata={
            "description": "pending, and the model is writing it: the fields hold what it has "
            "written so far (whole fields, list items and sentences), the rest are empty"
        }
    )
    tried = fields.List(
        fields.Nested(TriedSchema),
        metadata={"description": "what was tried and what it showed (empty on older handoffs)"},
    )
    open_questions = fields.List(
        fields.String(), metadata={"description": "what the senior still has to find out"}
    )
    summary_prose = fields.String()
    what_we_know = fields.List(fields.String())
    likely_cause = fields.String()
    suggested_steps = fields.List(fields.String())
    confidence = fields.String(allow_none=True)
    unfinished = fields.Dict(
        allow_none=True,
        metadata={
            "description": "on a fallback: the fields the model had written before it failed, "
            "shown but never validated as a whole (the handoff's own fields are the fallback, "
            "which is what the ticket note says); null otherwise"
        },
    )
    new_notes = fields.Integer(
        metadata={"description": "notes added to the ticket since this handoff was generated"}
    )
    model = fields.String(allow_none=True)
    started_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "when this generation began (regenerate resets it)"},
    )
    generated_at = fields.DateTime(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    seen_before = fields.List(
        fields.Nested(SeenBeforeCiteSchema),
        metadata={"description": "earlier escalations the model says are likely the same"},
    )


class ResolutionSchema(Schema):
    text = fields.String(metadata={"description": "what fixed it (redacted)"})
    resolved_by = fields.String()
    resolved_at = fields.DateTime(allow_none=True)
    source = fields.String(metadata={"description": "psa (read when it was closed) | panel"})


class RelatedSchema(Schema):
    escalation_id = fields.Integer()
    ticket_number = fields.String()
    ticket_id = fields.String()
    title = fields.String()
    company = fields.String()
    url = fields.String(metadata={"description": "the ticket in the PSA; empty when unknown"})
    received_at = fields.String(allow_none=True, metadata={"description": "ISO 8601"})
    resolution = fields.String(metadata={"description": "what fixed it; empty if not recorded"})
    resolved_by = fields.String()
    resolved_at = fields.String(allow_none=True, metadata={"description": "ISO 8601"})


class ResolutionWriteSchema(Schema):
    text = fields.String(
        required=True,
        validate=validate.Length(max=4000),
        metadata={"description": "what fixed it; empty clears it"},
    )


class ClaimSchema(Schema):
    member_id = fields.Integer()
    name = fields.String()
    claimed_at = fields.DateTime()


class RedactionsSchema(Schema):
    counts = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "per kind"}
    )
    summary = fields.String(
        metadata={"description": "in plain words; empty when nothing was removed"}
    )


class EscalationSchema(Schema):
    id = fields.Integer()
    ticket = fields.Nested(TicketRefSchema)
    escalated_by = fields.String()
    reason = fields.String(allow_none=True)
    received_at = fields.DateTime()
    state = fields.String(metadata={"description": "open | claimed"})
    handoff = fields.Nested(HandoffSchema)
    claim = fields.Nested(ClaimSchema, allow_none=True)
    first_action_at = fields.DateTime(allow_none=True)
    redactions = fields.Nested(RedactionsSchema)
    resolution = fields.Nested(
        ResolutionSchema, allow_none=True, metadata={"description": "what fixed it, once known"}
    )
    related = fields.List(
        fields.Nested(RelatedSchema),
        metadata={"description": "seen before: the tenant's earlier escalations most like this "
                  "one, best first, as found when the handoff was written"},
    )  # fmt: skip


ACTION_KINDS = ("step_used", "note_posted", "variant_copied", "variant_published", "ticket_opened")


class QueueQuerySchema(Schema):
    state = fields.String(load_default="open", validate=validate.OneOf(["open", "claimed", "all"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class QueueItemSchema(EscalationSchema):
    age_seconds = fields.Integer(metadata={"description": "seconds since it was escalated"})
    unread = fields.Boolean(metadata={"description": "this member has not opened it yet"})


class QueueSchema(Schema):
    items = fields.List(fields.Nested(QueueItemSchema))


class ClaimConflictSchema(Schema):
    error = fields.Dict()
    claimed_by = fields.String()
    claimed_at = fields.DateTime()


class ActionCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ACTION_KINDS))
    detail = fields.String(load_default="", validate=validate.Length(max=2000))


class ActionSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    detail = fields.String()
    created_at = fields.DateTime()
    first_action_at = fields.DateTime(
        allow_none=True, metadata={"description": "the escalation's first action after its claim"}
    )


class EscalateSchema(Schema):
    reason = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=4000),
            validate.Predicate("strip", error="must not be blank"),
        ],
    )


def load_escalation(escalation_id: int, member: Member) -> Escalation:
    """The escalation if it belongs to the member's tenant (and, for a technician, is theirs).

    Another tenant's id answers 404 exactly like an unknown one, so ids reveal nothing.
    """
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.tenant_id != member.tenant_id:
        raise APIError(404, "unknown_escalation", f"no escalation {escalation_id}")
    if not member.is_senior and escalation.escalated_by_member_id != member.id:
        raise APIError(404, "unknown_escalation", f"no escalation {escalation_id}")
    return escalation


EMPTY_FIELDS: dict[str, Any] = {
    "tried": [],
    "open_questions": [],
    "summary_prose": "",
    "what_we_know": [],
    "likely_cause": "",
    "suggested_steps": [],
    "confidence": None,
}


def handoff_view(escalation: Escalation) -> dict[str, Any]:
    handoff = escalation.handoff
    if handoff is None:
        return {
            "state": "pending",
            "source": None,
            "writing": False,
            **EMPTY_FIELDS,
            "unfinished": None,
            "new_notes": 0,
            "model": None,
            "generated_at": None,
            "failure_reason": None,
            "started_at": None,
            "seen_before": [],
        }
    writing = handoff.state == "pending" and bool(handoff.partial)
    saved = {name: getattr(handoff, name) for name in EMPTY_FIELDS}
    return {
        "state": handoff.state,
        "source": handoff.source,
        "writing": writing,
        **({**EMPTY_FIELDS, **(handoff.partial or {})} if writing else saved),
        "unfinished": (handoff.partial or None) if handoff.state == "fallback" else None,
        "new_notes": handoff.new_notes,
        "model": handoff.model,
        "started_at": handoff.started_at,
        "generated_at": handoff.generated_at,
        "failure_reason": handoff.failure_reason,
        "seen_before": handoff.seen_before or [] if not writing else [],
    }


def claim_view(escalation: Escalation) -> dict[str, Any] | None:
    if escalation.claimed_at is None or escalation.claimed_by is None:
        return None
    return {
        "member_id": escalation.claimed_by.id,
        "name": escalation.claimed_by.name,
        "claimed_at": escalation.claimed_at,
    }


def escalation_view(escalation: Escalation) -> dict[str, Any]:
    return {
        "id": escalation.id,
        "ticket": {
            "id": escalation.ticket_id,
            "number": escalation.ticket_number,
            "title": escalation.ticket_title,
            "url": escalation.ticket_url,
        },
        "escalated_by": escalation.escalated_by,
        "reason": escalation.reason,
        "received_at": escalation.received_at,
        "state": "claimed" if escalation.claimed_at else "open",
        "handoff": handoff_view(escalation),
        "claim": claim_view(escalation),
        "first_action_at": escalation.first_action_at,
        "redactions": {
            "counts": (escalation.context_snapshot or {}).get("redactions") or {},
            "summary": redaction_note(escalation, escalation.handoff),
        },
        "resolution": resolution_view(escalation),
        "related": escalation.related or [],
    }


def resolution_view(escalation: Escalation) -> dict[str, Any] | None:
    if not escalation.resolution:
        return None
    return {
        "text": escalation.resolution,
        "resolved_by": escalation.resolved_by,
        "resolved_at": escalation.resolved_at,
        "source": escalation.resolution_source or "",
    }


@blp.route("/escalations/<int:escalation_id>")
class EscalationDetail(MethodView):
    @blp.response(200, EscalationSchema)
    def get(self, escalation_id: int):
        """One escalation and its handoff"""
        return escalation_view(load_escalation(escalation_id, current_member()))


@blp.route("/escalations")
class Queue(MethodView):
    @blp.arguments(QueueQuerySchema, location="query")
    @blp.response(200, QueueSchema)
    def get(self, args: dict[str, Any]):
        """The queue, newest first: seniors see the tenant's, technicians their own"""
        member = current_member()
        query = (
            select(Escalation)
            .where(Escalation.tenant_id == member.tenant_id)
            .options(selectinload(Escalation.handoff), selectinload(Escalation.claimed_by))
        )
        if not member.is_senior:
            query = query.where(Escalation.escalated_by_member_id == member.id)
        if args["state"] == "open":
            query = query.where(Escalation.claimed_at.is_(None))
        elif args["state"] == "claimed":
            query = query.where(Escalation.claimed_at.is_not(None))
        query = query.order_by(Escalation.received_at.desc(), Escalation.id.desc())
        rows = session.scalars(query.limit(args["limit"])).all()
        read = set(
            session.scalars(
                select(EscalationRead.escalation_id).where(
                    EscalationRead.member_id == member.id,
                    EscalationRead.escalation_id.in_([row.id for row in rows]),
                )
            )
        )
        now = utcnow()
        items = [
            {
                **escalation_view(row),
                "age_seconds": max(0, int((now - row.received_at).total_seconds())),
                "unread": row.id not in read,
            }
            for row in rows
        ]
        return {"items": items}


def _mark_read(escalation: Escalation, member: Member) -> None:
    insert_if_absent(
        EscalationRead,
        ["escalation_id", "member_id"],
        escalation_id=escalation.id,
        member_id=member.id,
        read_at=utcnow(),
    )
    session.commit()


def _publish(escalation: Escalation, kind: str, data: dict[str, Any]) -> None:
    redis = current_app.extensions["baton"].redis
    events.publish(redis, escalation.tenant_id, kind, {"escalation_id": escalation.id, **data})


@blp.route("/escalations/<int:escalation_id>/claim")
class Claim(MethodView):
    @blp.response(200, EscalationSchema)
    @blp.alt_response(409, schema=ClaimConflictSchema, description="someone else picked it up")
    def post(self, escalation_id: int):
        """Pick up an escalation (engineer or admin); the first claim wins"""
        member = current_member()
        require_senior(member)
        escalation = load_escalation(escalation_id, member)
        # One conditional UPDATE decides: of fifty seniors clicking at once, one row changes.
        won: int = session.execute(  # type: ignore[attr-defined]
            update(Escalation)
            .where(Escalation.id == escalation.id, Escalation.claimed_at.is_(None))
            .values(claimed_by_member_id=member.id, claimed_at=utcnow())
        ).rowcount
        session.commit()
        session.expire(escalation)
        if not won and escalation.claimed_by_member_id != member.id:
            holder = escalation.claimed_by
            name = holder.name if holder else "a former member"
            claimed_at = escalation.claimed_at
            raise APIError(
                409,
                "already_claimed",
                f"Already picked up by {name}",
                claimed_by=name,
                claimed_at=claimed_at.isoformat() if claimed_at else None,
            )
        _mark_read(escalation, member)
        if won:
            step(escalation.id, "claimed", member=member.id)
            _publish(
                escalation,
                "escalation.claimed",
                {
                    "member_id": member.id,
                    "claimed_by": member.name,
                    "claimed_at": escalation.claimed_at,
                },
            )
        return escalation_view(escalation)


@blp.route("/escalations/<int:escalation_id>/read")
class Read(MethodView):
    @blp.response(204)
    def post(self, escalation_id: int):
        """Mark an escalation read for the calling member"""
        member = current_member()
        _mark_read(load_escalation(escalation_id, member), member)


def record_action(escalation: Escalation, member: Member, kind: str, detail: str) -> Action:
    """Record an action; the claimer's first one after the claim sets first_action_at."""
    action = Action(
        escalation_id=escalation.id,
        member_id=member.id,
        kind=kind,
        detail=detail,
        created_at=utcnow(),
    )
    session.add(action)
    session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation.id,
            Escalation.first_action_at.is_(None),
            Escalation.claimed_at.is_not(None),
            Escalation.claimed_by_member_id == member.id,
        )
        .values(first_action_at=action.created_at)
    )
    session.commit()
    session.expire(escalation)
    return action


@blp.route("/escalations/<int:escalation_id>/actions")
class Actions(MethodView):
    @blp.arguments(ActionCreateSchema)
    @blp.response(201, ActionSchema)
    def post(self, data: dict[str, Any], escalation_id: int):
        """Record what a member did; the claimer's first action after the claim is the metric"""
        member = current_member()
        escalation = load_escalation(escalation_id, member)
        action = record_action(escalation, member, data["kind"], data["detail"])
        return {
            "id": action.id,
            "kind": action.kind,
            "detail": action.detail,
            "created_at": action.created_at,
            "first_action_at": escalation.first_action_at,
        }


@blp.route("/escalations/<int:escalation_id>/resolution")
class WhatFixedIt(MethodView):
    @blp.arguments(ResolutionWriteSchema)
    @blp.response(200, EscalationSchema)
    def put(self, data: dict[str, Any], escalation_id: int):
        """Write or correct what fixed it (engineer or admin); it counts as an action and is
        kept over what the PSA says when it closes the ticket"""
        member = current_member()
        require_senior(member)
        escalation = load_escalation(escalation_id, member)
        resolutions.write(escalation, member, data["text"])
        record_action(escalation, member, "resolution_written", "")
        return escalation_view(escalation)


@blp.route("/escalations/<int:escalation_id>/regenerate")
class Regenerate(MethodView):
    @blp.response(202, EscalationSchema)
    def post(self, escalation_id: int):
        """A new one-call handoff (engineer or admin); the ticket keeps its one note"""
        member = current_member()
        require_senior(member)
        escalation = load_escalation(escalation_id, member)
        now = utcnow()
        if escalation.handoff is None:  # a legacy row: generate on demand
            session.add(Handoff(escalation_id=escalation.id, state="pending", started_at=now))
        else:
            session.execute(
                update(Handoff)
                .where(Handoff.escalation_id == escalation.id)
                .values(
                    state="pending",
                    source=None,
                    summary_prose="",
                    what_we_know=[],
                    likely_cause="",
                    suggested_steps=[],
                    confidence=None,
                    tried=[],
                    open_questions=[],
                    seen_before=[],
                    partial=None,
                    new_notes=0,
                    model=None,
                    generated_at=None,
                    failure_reason=None,
                    started_at=now,  # a fresh deadline for the new call
                )
            )
        session.commit()
        session.expire_all()
        step(escalation.id, "regenerate_requested", member=member.id)
        # Published before the enqueue, so that a quick worker's handoff.ready comes after it.
        _publish(escalation, "handoff.pending", {"state": "pending"})
        escalations.enqueue_pipeline(escalation.id, replace_dead=True)
        return escalation_view(escalation)


def _already_escalated(member: Member, ticket_id: str) -> APIError:
    latest = escalations.latest_escalation_id(member.tenant, ticket_id)
    return APIError(
        409,
        "already_escalated",
        f"ticket {ticket_id} is already escalated",
        escalation_id=latest,
    )


@blp.route("/tickets/<ticket_id>/escalate")
class EscalateTicket(MethodView):
    @blp.arguments(EscalateSchema)
    @blp.response(201, EscalationSchema)
    def post(self, data: dict[str, Any], ticket_id: str):
        """Escalate a ticket from the panel: the PSA status changes, then the same pipeline"""
        member = current_member()
        tenant = member.tenant
        ticket_id = ticket_id.strip()
        if not ticket_id or len(ticket_id) > 64:
            raise APIError(422, "invalid_request", "ticket_id: 1 to 64 characters")
        if not tenant.escalation_statuses:
            raise APIError(409, "not_configured", "the tenant has no escalation status yet")
        status = tenant.escalation_statuses[0]
        escalated = session.scalar(
            select(TicketState.escalated).where(
                TicketState.tenant_id == tenant.id, TicketState.ticket_id == ticket_id
            )
        )
        if escalated:
            raise _already_escalated(member, ticket_id)
        try:
            tenant_ops.adapter(tenant).set_status(ticket_id, status)
        except AdapterError as exc:
            raise APIError(
                502,
                "psa_error",
                f"the PSA did not move ticket {ticket_id} to {status!r}: {exc}",
            ) from None
        event = TicketEvent(
            ticket_id=ticket_id,
            delivery_key=f"panel:{uuid.uuid4()}",
            status=status,
            actor=member.psa_member_id,
        )
        recorded = escalations.record(
            tenant, event, reason=data["reason"].strip(), source="panel", member=member
        )
        if recorded.escalation_id is None:  # the PSA's own webhook got there first
            raise _already_escalated(member, ticket_id)
        escalations.start_pipeline(
            recorded.escalation_id, tenant_id=tenant.id, ticket_id=ticket_id, source="panel"
        )
        return escalation_view(session.get_one(Escalation, recorded.escalation_id))
