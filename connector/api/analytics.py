"""Pilot analytics for the calling member's tenant: figures, weekly chart, CSV, baseline, pilot.

Engineers and admins read; only admins record or delete baseline samples and set the pilot.
Every figure comes from connector.metrics, computed from rows.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from connector import metrics
from connector.auth import current_member, require_admin, require_senior
from connector.db import session, utcnow
from connector.errors import APIError
from connector.models import BaselineSample, Member

blp = Blueprint(
    "analytics",
    __name__,
    url_prefix="/api/v1",
    description="Pilot analytics: in-product metrics, the stopwatched baseline, the verdict",
)


# --- schemas -------------------------------------------------------------------------------


class DaysArgs(Schema):
    days = fields.Integer(
        load_default=metrics.DEFAULT_DAYS,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "the window: escalations received in the last N days"},
    )


class WeeksArgs(Schema):
    weeks = fields.Integer(load_default=metrics.PILOT_WEEKS, validate=validate.Range(min=1, max=52))


def _num(description: str = "") -> fields.Float:
    return fields.Float(
        allow_none=True, metadata={"description": description} if description else {}
    )


class TTFASchema(Schema):
    median = _num("seconds")
    p90 = _num("seconds")
    n = fields.Integer()


class ReadySchema(Schema):
    p50 = _num("seconds")
    p95 = _num("seconds")
    n = fields.Integer()


class ReadySplitSchema(Schema):
    all = fields.Nested(ReadySchema)
    ai = fields.Nested(ReadySchema)
    fallback = fields.Nested(ReadySchema)


class AIUsageSchema(Schema):
    escalations = fields.Integer()
    calls = fields.Integer()
    calls_per_escalation = fields.Dict(
        keys=fields.String(), values=fields.Float(), metadata={"description": "by purpose"}
    )
    input_tokens_per_escalation = _num()
    output_tokens_per_escalation = _num()
    cost_per_escalation_usd = _num("null when a model has no configured price")
    cost_note = fields.String(allow_none=True)
    terminal_handoffs = fields.Integer()
    fallback_rate = _num("fallback handoffs / terminal handoffs")


class BaselineFigureSchema(Schema):
    n = fields.Integer()
    median_minutes = _num()


class MaybeFigureSchema(Schema):
    value = _num()
    reason = fields.String(allow_none=True, metadata={"description": "why value is null"})


class VerdictSchema(Schema):
    outcome = fields.String(
        metadata={"description": "keep | revisit | too_early | not_enough_data"}
    )
    reason = fields.String()
    due_on = fields.Date(allow_none=True)
    pilot_started_on = fields.Date(allow_none=True)
    threshold_hours = fields.Float()


class AnalyticsSchema(Schema):
    days = fields.Integer()
    count = fields.Integer()
    claimed = fields.Integer()
    escalations_per_week = fields.Float()
    time_to_first_action_seconds = fields.Nested(TTFASchema)
    time_to_ready_seconds = fields.Nested(ReadySplitSchema)
    ai = fields.Nested(AIUsageSchema)
    baseline = fields.Nested(BaselineFigureSchema)
    minutes_recovered_per_escalation = fields.Nested(MaybeFigureSchema)
    hours_saved_per_week = fields.Nested(MaybeFigureSchema)
    verdict = fields.Nested(VerdictSchema)


class WeekSchema(Schema):
    week = fields.String(metadata={"description": "ISO week, e.g. 2026-W14"})
    week_start = fields.Date()
    median_seconds = _num("median post-claim time to first action")
    n = fields.Integer()


class BaselineCreateSchema(Schema):
    minutes = fields.Float(
        required=True, validate=validate.Range(min=0, min_inclusive=False, max=480)
    )
    ticket = fields.String(load_default="", validate=validate.Length(max=64))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class BaselineSampleSchema(Schema):
    id = fields.Integer()
    minutes = fields.Float()
    ticket = fields.String()
    note = fields.String()
    recorded_by = fields.String(allow_none=True)
    created_at = fields.DateTime()


class PilotSchema(Schema):
    pilot_started_on = fields.Date(allow_none=True)
    verdict_threshold_hours = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False, max=168)
    )


# --- helpers -------------------------------------------------------------------------------


def _senior() -> Member:
    member = current_member()
    require_senior(member)
    return member


def _admin() -> Member:
    member = current_member()
    require_admin(member)
    return member


def _prices() -> Any:
    return current_app.extensions["baton"].settings.prices


def sample_view(sample: BaselineSample) -> dict[str, Any]:
    recorder = (
        session.get(Member, sample.recorded_by_member_id) if sample.recorded_by_member_id else None
    )
    return {
        "id": sample.id,
        "minutes": sample.minutes,
        "ticket": sample.ticket,
        "note": sample.note,
        "recorded_by": recorder.name if recorder else None,
        "created_at": sample.created_at,
    }


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """A spreadsheet never evaluates a cell: one that could start a formula gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


CSV_COLUMNS = (
    "id",
    "ticket",
    "received_at",
    "claimed_at",
    "first_action_at",
    "time_to_first_action_s",
    "handoff_state",
    "handoff_source",
    "generated_at",
    "time_to_ready_s",
    "summary_calls",
    "tone_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


def csv_row(row: metrics.EscalationRow, prices: Any) -> list[Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    cost = metrics.escalation_cost(row, prices)
    return [
        row.id,
        row.ticket,
        iso(row.received_at),
        iso(row.claimed_at),
        iso(row.first_action_at),
        row.time_to_first_action,
        row.handoff_state,
        row.handoff_source,
        iso(row.generated_at),
        row.time_to_ready,
        sum(1 for c in row.calls if c.purpose == "summary"),
        sum(1 for c in row.calls if c.purpose.startswith("tone")),
        sum(c.input_tokens for c in row.calls),
        sum(c.output_tokens for c in row.calls),
        f"{cost:.6f}" if cost is not None else None,
    ]


# --- endpoints -----------------------------------------------------------------------------


@blp.route("/analytics/escalations")
class Escalations(MethodView):
    @blp.arguments(DaysArgs, location="query")
    @blp.response(200, AnalyticsSchema)
    def get(self, args: dict[str, Any]):
        """Every figure for the last N days, computed from rows (engineer or admin)"""
        member = _senior()
        return metrics.tenant_summary(member.tenant, args["days"], _prices(), utcnow())


@blp.route("/analytics/escalations.csv")
class EscalationsCSV(MethodView):
    @blp.arguments(DaysArgs, location="query")
    @blp.doc(
        responses={
            "200": {
                "description": "one row per escalation, header first",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self, args: dict[str, Any]):
        """The escalations behind every figure, as CSV (engineer or admin)"""
        member = _senior()
        days = args["days"]
        rows = metrics.window(member.tenant_id, days, utcnow())
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        prices = _prices()
        for row in rows:
            writer.writerow([csv_safe(v) for v in csv_row(row, prices)])
        filename = f"baton-escalations-{member.tenant.slug}-{days}d.csv"
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


@blp.route("/analytics/weekly")
class Weekly(MethodView):
    @blp.arguments(WeeksArgs, location="query")
    @blp.response(200, WeekSchema(many=True))
    def get(self, args: dict[str, Any]):
        """Median post-claim time to first action per ISO week, oldest first (engineer or admin)"""
        member = _senior()
        return metrics.tenant_weekly(member.tenant, args["weeks"], utcnow())


@blp.route("/analytics/baseline")
class Baseline(MethodView):
    @blp.response(200, BaselineSampleSchema(many=True))
    def get(self):
        """The stopwatched manual handoffs (engineer or admin)"""
        member = _senior()
        samples = session.scalars(
            select(BaselineSample)
            .where(BaselineSample.tenant_id == member.tenant_id)
            .order_by(BaselineSample.id)
        )
        return [sample_view(s) for s in samples]

    @blp.arguments(BaselineCreateSchema)
    @blp.response(201, BaselineSampleSchema)
    def post(self, data: dict[str, Any]):
        """Record one stopwatched manual handoff (admin)"""
        member = _admin()
        sample = BaselineSample(
            tenant_id=member.tenant_id,
            minutes=data["minutes"],
            ticket=data["ticket"].strip(),
            note=data["note"].strip(),
            recorded_by_member_id=member.id,
        )
        session.add(sample)
        session.commit()
        return sample_view(sample)


@blp.route("/analytics/baseline/<int:sample_id>")
class BaselineDetail(MethodView):
    @blp.response(204)
    def delete(self, sample_id: int):
        """Delete one baseline sample (admin); another tenant's id is 404 like an unknown one"""
        member = _admin()
        sample = session.get(BaselineSample, sample_id)
        if sample is None or sample.tenant_id != member.tenant_id:
            raise APIError(404, "unknown_baseline_sample", f"no baseline sample {sample_id}")
        session.delete(sample)
        session.commit()


@blp.route("/tenant/pilot")
class Pilot(MethodView):
    @blp.arguments(PilotSchema)
    @blp.response(200, PilotSchema)
    def put(self, data: dict[str, Any]):
        """Set the pilot start date and the verdict threshold in hours a week (admin)"""
        member = _admin()
        if not data:
            raise APIError(
                422, "invalid_request", "give pilot_started_on and/or verdict_threshold_hours"
            )
        tenant = member.tenant
        if "pilot_started_on" in data:
            tenant.pilot_started_on = data["pilot_started_on"]
        if "verdict_threshold_hours" in data:
            tenant.verdict_threshold_hours = data["verdict_threshold_hours"]
        session.commit()
        return {
            "pilot_started_on": tenant.pilot_started_on,
            "verdict_threshold_hours": tenant.verdict_threshold_hours,
        }
