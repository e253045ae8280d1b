"""The panel's JSON API: escalations of the calling member's tenant only."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from connector.auth import current_member
from connector.db import session
from connector.errors import APIError
from connector.models import Escalation, Member

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


class HandoffSchema(Schema):
    state = fields.String(metadata={"description": "pending | ready | fallback"})
    source = fields.String(allow_none=True, metadata={"description": "ai | fallback"})
    summary_prose = fields.String()
    what_we_know = fields.List(fields.String())
    likely_cause = fields.String()
    suggested_steps = fields.List(fields.String())
    confidence = fields.String(allow_none=True)
    model = fields.String(allow_none=True)
    generated_at = fields.DateTime(allow_none=True)
    failure_reason = fields.String(allow_none=True)


class ClaimSchema(Schema):
    member_id = fields.Integer()
    name = fields.String()
    claimed_at = fields.DateTime()


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


def handoff_view(escalation: Escalation) -> dict[str, Any]:
    handoff = escalation.handoff
    if handoff is None:
        return {
            "state": "pending",
            "source": None,
            "summary_prose": "",
            "what_we_know": [],
            "likely_cause": "",
            "suggested_steps": [],
            "confidence": None,
            "model": None,
            "generated_at": None,
            "failure_reason": None,
        }
    return {
        "state": handoff.state,
        "source": handoff.source,
        "summary_prose": handoff.summary_prose,
        "what_we_know": handoff.what_we_know,
        "likely_cause": handoff.likely_cause,
        "suggested_steps": handoff.suggested_steps,
        "confidence": handoff.confidence,
        "model": handoff.model,
        "generated_at": handoff.generated_at,
        "failure_reason": handoff.failure_reason,
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
    }


@blp.route("/escalations/<int:escalation_id>")
class EscalationDetail(MethodView):
    @blp.response(200, EscalationSchema)
    def get(self, escalation_id: int):
        """One escalation and its handoff"""
        return escalation_view(load_escalation(escalation_id, current_member()))
