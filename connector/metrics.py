"""Pilot analytics computed from rows only: time to first action, time to ready, AI use and cost,
the stopwatched baseline, minutes recovered, hours saved, and the week-8 verdict.

Two figures are never merged: the in-product metric (post-claim time to first action, measured
by Baton) and the sales claim (minutes recovered against a manual stopwatch baseline). The
claim is only computed when both sides have at least MIN_SAMPLES, and is always reported beside
the in-product figure.

Percentiles use linear interpolation between closest ranks (numpy's default, "type 7"): for
sorted values x[0..n-1] and a fraction q, the rank is r = (n - 1) * q; with lo = floor(r) the
value is x[lo] + (x[lo + 1] - x[lo]) * (r - lo). So the median of an even count is the mean of
the middle two, p90 of [10, 20, 30, 40, 50] is 46, and a single value is every percentile.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.db import session
from connector.models import TERMINAL_STATES, AICall, BaselineSample, Escalation, Handoff, Tenant

DEFAULT_DAYS = 56
MIN_SAMPLES = 5  # below this a median says too little to sell on
PILOT_WEEKS = 8


# --- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRow:
    purpose: str
    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class EscalationRow:
    """One escalation with what the figures need: its handoff and its model calls."""

    id: int
    ticket: str
    received_at: datetime
    claimed_at: datetime | None
    first_action_at: datetime | None
    handoff_state: str | None
    handoff_source: str | None
    generated_at: datetime | None
    calls: tuple[CallRow, ...] = field(default=())

    @property
    def time_to_first_action(self) -> float | None:
        """Seconds from claim to first action; None unless both exist in that order."""
        if self.claimed_at is None or self.first_action_at is None:
            return None
        seconds = (self.first_action_at - self.claimed_at).total_seconds()
        return seconds if seconds >= 0 else None

    @property
    def time_to_ready(self) -> float | None:
        """Seconds from receipt to a terminal handoff; None while pending."""
        if self.handoff_state not in TERMINAL_STATES or self.generated_at is None:
            return None
        return (self.generated_at - self.received_at).total_seconds()


def load_escalations(tenant_id: int, since: datetime, until: datetime) -> list[EscalationRow]:
    """The tenant's escalations received in [since, until), oldest first, with handoff and calls."""
    rows = session.execute(
        select(Escalation, Handoff)
        .outerjoin(Handoff, Handoff.escalation_id == Escalation.id)
        .where(
            Escalation.tenant_id == tenant_id,
            Escalation.received_at >= since,
            Escalation.received_at < until,
        )
        .order_by(Escalation.received_at, Escalation.id)
    ).all()
    ids = [escalation.id for escalation, _ in rows]
    calls: dict[int, list[CallRow]] = {}
    if ids:
        for call in session.scalars(
            select(AICall)
            .where(AICall.tenant_id == tenant_id, AICall.escalation_id.in_(ids))
            .order_by(AICall.id)
        ):
            assert call.escalation_id is not None
            calls.setdefault(call.escalation_id, []).append(
                CallRow(call.purpose, call.model, call.input_tokens, call.output_tokens)
            )
    return [
        EscalationRow(
            id=escalation.id,
            ticket=escalation.ticket_number or escalation.ticket_id,
            received_at=escalation.received_at,
            claimed_at=escalation.claimed_at,
            first_action_at=escalation.first_action_at,
            handoff_state=handoff.state if handoff else None,
            handoff_source=handoff.source if handoff else None,
            generated_at=handoff.generated_at if handoff else None,
            calls=tuple(calls.get(escalation.id, ())),
        )
        for escalation, handoff in rows
    ]


def load_baseline(tenant_id: int) -> list[float]:
    """Every stopwatched manual handoff of the tenant, in minutes (not windowed: the baseline
    is measured once, usually before the pilot)."""
    return list(
        session.scalars(
            select(BaselineSample.minutes)
            .where(BaselineSample.tenant_id == tenant_id)
            .order_by(BaselineSample.id)
        )
    )


# --- pure computations ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (see the module docstring); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def time_to_first_action(rows: Iterable[EscalationRow]) -> dict[str, Any]:
    values = [v for v in (r.time_to_first_action for r in rows) if v is not None]
    return {"median": percentile(values, 0.5), "p90": percentile(values, 0.9), "n": len(values)}


def time_to_ready(rows: Iterable[EscalationRow]) -> dict[str, dict[str, Any]]:
    """Receipt to terminal handoff, for all terminal handoffs and split by their source."""
    groups: dict[str, list[float]] = {"all": [], "ai": [], "fallback": []}
    for row in rows:
        seconds = row.time_to_ready
        if seconds is None:
            continue
        groups["all"].append(seconds)
        if row.handoff_source in groups and row.handoff_source != "all":
            groups[row.handoff_source].append(seconds)
    return {
        name: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)}
        for name, v in groups.items()
    }


def call_cost(call: CallRow, prices: Mapping[str, tuple[float, float]]) -> float | None:
    """USD for one call from the per-model price table ($ per million tokens); None if unpriced."""
    price = prices.get(call.model)
    if price is None:
        return None
    return (call.input_tokens * price[0] + call.output_tokens * price[1]) / 1_000_000


def escalation_cost(row: EscalationRow, prices: Mapping[str, tuple[float, float]]) -> float | None:
    costs = [call_cost(c, prices) for c in row.calls]
    if any(c is None for c in costs):
        return None
    return sum(c for c in costs if c is not None)


def ai_usage(
    rows: Sequence[EscalationRow], prices: Mapping[str, tuple[float, float]]
) -> dict[str, Any]:
    """Per-escalation averages over every escalation in the window (those with no call count)."""
    count = len(rows)
    calls = [c for r in rows for c in r.calls]
    by_purpose = Counter(c.purpose for c in calls)
    terminal = [r for r in rows if r.handoff_state in TERMINAL_STATES]
    fallbacks = sum(1 for r in terminal if r.handoff_source == "fallback")
    unpriced = sorted({c.model for c in calls if c.model not in prices})
    total_cost = sum(call_cost(c, prices) or 0.0 for c in calls)

    def per(total: float) -> float | None:
        return total / count if count else None

    return {
        "escalations": count,
        "calls": len(calls),
        "calls_per_escalation": {p: per(n) for p, n in sorted(by_purpose.items())},
        "input_tokens_per_escalation": per(sum(c.input_tokens for c in calls)),
        "output_tokens_per_escalation": per(sum(c.output_tokens for c in calls)),
        "cost_per_escalation_usd": None if unpriced else per(total_cost),
        "cost_note": (
            f"no price configured for model(s): {', '.join(unpriced)}" if unpriced else None
        ),
        "terminal_handoffs": len(terminal),
        "fallback_rate": fallbacks / len(terminal) if terminal else None,
    }


def baseline(minutes: Sequence[float]) -> dict[str, Any]:
    return {"n": len(minutes), "median_minutes": percentile(minutes, 0.5)}


def minutes_recovered(
    baseline_figure: Mapping[str, Any], ttfa: Mapping[str, Any]
) -> dict[str, Any]:
    """Baseline median minus in-product median TTFA (minutes), only when both n >= MIN_SAMPLES."""
    missing = []
    if baseline_figure["n"] < MIN_SAMPLES:
        missing.append(
            f"{baseline_figure['n']} baseline sample(s); {MIN_SAMPLES} stopwatched manual "
            "handoffs are needed"
        )
    if ttfa["n"] < MIN_SAMPLES:
        missing.append(
            f"{ttfa['n']} escalation(s) with a claim and a first action; {MIN_SAMPLES} are needed"
        )
    if missing:
        return {"value": None, "reason": "; ".join(missing)}
    return {"value": baseline_figure["median_minutes"] - ttfa["median"] / 60, "reason": None}


def hours_saved(recovered: Mapping[str, Any], per_week: float) -> dict[str, Any]:
    if recovered["value"] is None:
        return {"value": None, "reason": f"minutes recovered is not known: {recovered['reason']}"}
    return {"value": recovered["value"] * per_week / 60, "reason": None}


def verdict(
    pilot_started_on: date | None,
    threshold_hours: float,
    saved: Mapping[str, Any],
    today: date,
) -> dict[str, Any]:
    """keep / revisit at pilot week 8; too_early or not_enough_data (with the reason) before."""
    base = {"threshold_hours": threshold_hours, "pilot_started_on": pilot_started_on}
    if pilot_started_on is None:
        return {
            **base,
            "outcome": "too_early",
            "due_on": None,
            "reason": "no pilot start date is set (PUT /api/v1/tenant/pilot)",
        }
    due_on = pilot_started_on + timedelta(weeks=PILOT_WEEKS)
    if today < due_on:
        return {
            **base,
            "outcome": "too_early",
            "due_on": due_on,
            "reason": f"the verdict is due at pilot week {PILOT_WEEKS}, on {due_on.isoformat()}",
        }
    if saved["value"] is None:
        return {**base, "outcome": "not_enough_data", "due_on": due_on, "reason": saved["reason"]}
    keep = saved["value"] >= threshold_hours
    return {
        **base,
        "outcome": "keep" if keep else "revisit",
        "due_on": due_on,
        "reason": (
            f"{saved['value']:.3g} hours saved a week is "
            f"{'at or above' if keep else 'below'} the threshold of {threshold_hours:g}"
        ),
    }


def summarize(
    rows: Sequence[EscalationRow],
    baseline_minutes: Sequence[float],
    *,
    days: int,
    prices: Mapping[str, tuple[float, float]],
    pilot_started_on: date | None,
    threshold_hours: float,
    today: date,
) -> dict[str, Any]:
    """Every figure of the analytics endpoint, from rows."""
    count = len(rows)
    per_week = count / (days / 7)
    ttfa = time_to_first_action(rows)
    base = baseline(baseline_minutes)
    recovered = minutes_recovered(base, ttfa)
    saved = hours_saved(recovered, per_week)
    return {
        "days": days,
        "count": count,
        "claimed": sum(1 for r in rows if r.claimed_at is not None),
        "escalations_per_week": per_week,
        "time_to_first_action_seconds": ttfa,
        "time_to_ready_seconds": time_to_ready(rows),
        "ai": ai_usage(rows, prices),
        "baseline": base,
        "minutes_recovered_per_escalation": recovered,
        "hours_saved_per_week": saved,
        "verdict": verdict(pilot_started_on, threshold_hours, saved, today),
    }


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly(rows: Iterable[EscalationRow], weeks: int, today: date) -> list[dict[str, Any]]:
    """Median TTFA and n per ISO week (by the week the escalation was received), oldest first,
    for the `weeks` weeks ending with the current one; a week with no data has median None."""
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    buckets: dict[date, list[float]] = {first_monday + timedelta(weeks=i): [] for i in range(weeks)}
    for row in rows:
        day = row.received_at.astimezone(UTC).date()
        monday = day - timedelta(days=day.weekday())
        seconds = row.time_to_first_action
        if monday in buckets and seconds is not None:
            buckets[monday].append(seconds)
    return [
        {
            "week": iso_week(monday),
            "week_start": monday,
            "median_seconds": percentile(values, 0.5),
            "n": len(values),
        }
        for monday, values in buckets.items()
    ]


def week_start(today: date, weeks: int) -> datetime:
    """Midnight UTC on the Monday that opens the first of `weeks` weeks ending this week."""
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


# --- one tenant ----------------------------------------------------------------------------


def window(tenant_id: int, days: int, now: datetime) -> list[EscalationRow]:
    """The escalations behind the figures: received in the last `days` days, up to now."""
    return load_escalations(tenant_id, now - timedelta(days=days), now + timedelta(seconds=1))


def tenant_summary(
    tenant: Tenant,
    days: int,
    prices: Mapping[str, tuple[float, float]],
    now: datetime,
) -> dict[str, Any]:
    return summarize(
        window(tenant.id, days, now),
        load_baseline(tenant.id),
        days=days,
        prices=prices,
        pilot_started_on=tenant.pilot_started_on,
        threshold_hours=tenant.verdict_threshold_hours or 1.0,
        today=now.date(),
    )


def tenant_weekly(tenant: Tenant, weeks: int, now: datetime) -> list[dict[str, Any]]:
    rows = load_escalations(tenant.id, week_start(now.date(), weeks), now + timedelta(seconds=1))
    return weekly(rows, weeks, now.date())
