"""Pilot analytics on a seeded set whose every answer is worked out by hand in this file.

Percentiles are linear interpolation between closest ranks (connector/metrics.py): for sorted
x[0..n-1] the q-th is at rank r = (n - 1) * q, x[lo] + (x[lo+1] - x[lo]) * (r - lo).

Tenant "acme" (the one measured), inside the default 56-day window:

  esc  received   TTFA s  handoff (received -> generated)   model calls (purpose model in/out)
  E1   now-10d    120     ready ai        8 s                summary big 1000/200
  E2   now-10d    240     ready ai       12 s                summary big 2000/400,
                                                             tone:client_update small 500/100
  E3   now-10d    360     fallback       20 s                summary big 0/0 (timed out)
  E4   now-3d      60     ready ai       10 s                summary big 1000/200
  E5   now-3d     600     ready ai        6 s                summary big 3000/600
  E6   now-2d     claimed, no action     pending             -
  E7   now-2d     not claimed            fallback  4 s       -
  E8   now-70d     30     ready ai        5 s                summary big 9999/9999 (outside 56 d)

Tenant "other" has three escalations (TTFA 5 s, huge token counts) and baseline samples of
100 minutes: none of it may ever show up in acme's figures.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from connector.db import session
from connector.models import AICall, BaselineSample, Escalation, Handoff, Tenant

PRICES = {"big": (3.0, 15.0), "small": (1.0, 5.0)}  # USD per million tokens (in, out)
BASELINE = [10.0, 12.0, 8.0, 15.0, 9.0]  # sorted 8, 9, 10, 12, 15: median 10


# --- seeding ---------------------------------------------------------------------------------


def _tenant(client, admin_headers, slug: str) -> None:
    body = {"slug": slug, "name": f"{slug.title()} MSP", "vendor": "connectwise"}
    body["escalation_statuses"] = ["Escalated"]
    assert client.post("/api/v1/admin/tenants", json=body, headers=admin_headers).status_code == 201


def _member(client, admin_headers, slug: str, role: str) -> dict[str, str]:
    response = client.post(
        f"/api/v1/admin/tenants/{slug}/members",
        json={
            "psa_member_id": f"{slug}-{role}",
            "name": f"{role.title()} of {slug}",
            "email": f"{role}@{slug}.example",
            "role": role,
        },
        headers=admin_headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def _escalation(
    tenant_id: int,
    key: str,
    received_at: datetime,
    *,
    ttfa: float | None = None,
    claimed: bool = True,
    handoff: tuple[str, str | None, float | None] | None = None,
    calls: tuple[tuple[str, str, int, int], ...] = (),
    ticket: str | None = None,
) -> Escalation:
    claimed_at = received_at + timedelta(minutes=1) if claimed else None
    escalation = Escalation(
        tenant_id=tenant_id,
        ticket_id=key,
        ticket_number=ticket if ticket is not None else f"#{key}",
        ticket_title=f"Ticket {key}",
        delivery_key=f"delivery-{key}",
        received_at=received_at,
        claimed_at=claimed_at,
        first_action_at=(
            claimed_at + timedelta(seconds=ttfa) if claimed_at and ttfa is not None else None
        ),
    )
    session.add(escalation)
    session.flush()
    if handoff is not None:
        state, source, seconds = handoff
        session.add(
            Handoff(
                escalation_id=escalation.id,
                state=state,
                source=source,
                started_at=received_at,
                generated_at=received_at + timedelta(seconds=seconds) if seconds else None,
            )
        )
    for purpose, model, tokens_in, tokens_out in calls:
        session.add(
            AICall(
                tenant_id=tenant_id,
                escalation_id=escalation.id,
                purpose=purpose,
                model=model,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                outcome="ok" if tokens_out else "timeout",
            )
        )
    return escalation


def seed(app, client, admin_headers, *, baseline=BASELINE, with_e5=True) -> dict[str, Any]:
    """Both tenants, their members and the rows of the module docstring."""
    for slug in ("acme", "other"):
        _tenant(client, admin_headers, slug)
    seeded: dict[str, Any] = {
        "admin": _member(client, admin_headers, "acme", "admin"),
        "engineer": _member(client, admin_headers, "acme", "engineer"),
        "technician": _member(client, admin_headers, "acme", "technician"),
        "other_admin": _member(client, admin_headers, "other", "admin"),
    }
    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        acme = session.query(Tenant).filter_by(slug="acme").one()
        other = session.query(Tenant).filter_by(slug="other").one()
        # 10:00 UTC on each day, so the hours added below never cross into another ISO week
        ten, three, two = ((now - timedelta(days=n)).replace(hour=10, minute=0) for n in (10, 3, 2))
        escalations = [
            _escalation(
                acme.id,
                "E1",
                ten,
                ttfa=120,
                handoff=("ready", "ai", 8),
                calls=(("summary", "big", 1000, 200),),
            ),
            _escalation(
                acme.id,
                "E2",
                ten + timedelta(hours=1),
                ttfa=240,
                handoff=("ready", "ai", 12),
                calls=(("summary", "big", 2000, 400), ("tone:client_update", "small", 500, 100)),
            ),
            _escalation(
                acme.id,
                "E3",
                ten + timedelta(hours=2),
                ttfa=360,
                handoff=("fallback", "fallback", 20),
                calls=(("summary", "big", 0, 0),),
            ),
            _escalation(
                acme.id,
                "E4",
                three,
                ttfa=60,
                handoff=("ready", "ai", 10),
                calls=(("summary", "big", 1000, 200),),
            ),
        ]
        if with_e5:
            escalations.append(
                _escalation(
                    acme.id,
                    "E5",
                    three + timedelta(hours=1),
                    ttfa=600,
                    handoff=("ready", "ai", 6),
                    calls=(("summary", "big", 3000, 600),),
                )
            )
        escalations += [
            _escalation(acme.id, "E6", two, handoff=("pending", None, None)),
            _escalation(
                acme.id,
                "E7",
                two + timedelta(hours=1),
                claimed=False,
                handoff=("fallback", "fallback", 4),
            ),
            _escalation(
                acme.id,
                "E8",
                now - timedelta(days=70),
                ttfa=30,
                handoff=("ready", "ai", 5),
                calls=(("summary", "big", 9999, 9999),),
            ),
        ]
        for i in range(3):
            _escalation(
                other.id,
                f"O{i}",
                now - timedelta(days=1, hours=i),
                ttfa=5,
                handoff=("ready", "ai", 1),
                calls=(("summary", "big", 50000, 50000),),
            )
        for minutes in baseline:
            session.add(BaselineSample(tenant_id=acme.id, minutes=minutes, ticket="T"))
        for _ in range(5):
            session.add(BaselineSample(tenant_id=other.id, minutes=100.0, ticket="O"))
        session.commit()
        seeded["ids"] = {e.ticket_id: e.id for e in escalations}
        seeded["received"] = {e.ticket_id: e.received_at for e in escalations}
        seeded["acme_id"], seeded["other_id"] = acme.id, other.id
        session.remove()
    seeded["now"] = now
    return seeded


@pytest.fixture
def app(app_factory):
    return app_factory(prices=PRICES)


@pytest.fixture
def seeded(app, client, admin_headers):
    return seed(app, client, admin_headers)


def analytics(client, headers, days: int | None = None) -> dict[str, Any]:
    url = "/api/v1/analytics/escalations" + (f"?days={days}" if days else "")
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def set_pilot(client, headers, **body) -> Any:
    return client.put("/api/v1/tenant/pilot", json=body, headers=headers)


# --- every figure ----------------------------------------------------------------------------


def test_every_figure_on_the_seeded_set(client, seeded):
    data = analytics(client, seeded["engineer"])
    assert data["days"] == 56
    assert data["count"] == 7  # E1..E7; E8 is 70 days old
    assert data["claimed"] == 6  # all but E7
    assert data["escalations_per_week"] == pytest.approx(7 / 8)

    # TTFA sorted 60 120 240 360 600: median 240; p90 rank 3.6 -> 360 + 0.6 * 240 = 504
    assert data["time_to_first_action_seconds"] == {"median": 240.0, "p90": 504.0, "n": 5}

    ready = data["time_to_ready_seconds"]
    # all: 4 6 8 10 12 20 -> p50 rank 2.5 = 9; p95 rank 4.75 = 12 + 0.75 * 8 = 18
    assert ready["all"] == {"p50": 9.0, "p95": pytest.approx(18.0), "n": 6}
    # ai: 6 8 10 12 -> p50 rank 1.5 = 9; p95 rank 2.85 = 10 + 0.85 * 2 = 11.7
    assert ready["ai"] == {"p50": 9.0, "p95": pytest.approx(11.7), "n": 4}
    # fallback: 4 20 -> p50 12; p95 rank 0.95 = 4 + 0.95 * 16 = 19.2
    assert ready["fallback"] == {"p50": 12.0, "p95": pytest.approx(19.2), "n": 2}

    ai = data["ai"]
    assert ai["escalations"] == 7 and ai["calls"] == 6
    assert ai["calls_per_escalation"] == {
        "summary": pytest.approx(5 / 7),
        "tone:client_update": pytest.approx(1 / 7),
    }
    assert ai["input_tokens_per_escalation"] == pytest.approx(7500 / 7)
    assert ai["output_tokens_per_escalation"] == pytest.approx(1500 / 7)
    # big: 7000 in * $3 + 1400 out * $15 = 42000; small: 500 * $1 + 100 * $5 = 1000 (per MTok)
    assert ai["cost_per_escalation_usd"] == pytest.approx(43000 / 1e6 / 7)
    assert ai["cost_note"] is None
    assert ai["terminal_handoffs"] == 6
    assert ai["fallback_rate"] == pytest.approx(2 / 6)

    assert data["baseline"] == {"n": 5, "median_minutes": 10.0}
    # 10 min baseline - 240 s (4 min) in product
    assert data["minutes_recovered_per_escalation"] == {"value": 6.0, "reason": None}
    # 6 min * 0.875 a week / 60
    assert data["hours_saved_per_week"]["value"] == pytest.approx(6 * 0.875 / 60)
    # both figures always side by side: the in-product one is there whatever the claim says
    assert data["time_to_first_action_seconds"]["median"] == 240.0


def test_a_wider_window_takes_in_older_rows(client, seeded):
    data = analytics(client, seeded["admin"], days=90)
    assert data["count"] == 8
    assert data["escalations_per_week"] == pytest.approx(8 / (90 / 7))
    # TTFA 30 60 120 240 360 600: median rank 2.5 = 180
    assert data["time_to_first_action_seconds"]["median"] == 180.0
    assert data["time_to_first_action_seconds"]["n"] == 6


def test_unpriced_model_makes_cost_null_with_a_note(app, client, seeded):
    with app.app_context():
        session.add(
            AICall(
                tenant_id=seeded["acme_id"],
                escalation_id=seeded["ids"]["E4"],
                purpose="tone:email_draft",
                model="mystery-model",
                input_tokens=10,
                output_tokens=10,
                outcome="ok",
            )
        )
        session.commit()
        session.remove()
    ai = analytics(client, seeded["admin"])["ai"]
    assert ai["cost_per_escalation_usd"] is None
    assert "mystery-model" in ai["cost_note"]
    assert ai["input_tokens_per_escalation"] == pytest.approx(7510 / 7)


# --- the n < 5 cases -------------------------------------------------------------------------


def test_baseline_under_five_samples_gives_null_with_reason(app, client, admin_headers):
    s = seed(app, client, admin_headers, baseline=BASELINE[:4])
    data = analytics(client, s["admin"])
    # the first four, 10 12 8 15, sorted 8 10 12 15: median 11, still reported
    assert data["baseline"] == {"n": 4, "median_minutes": 11.0}
    recovered = data["minutes_recovered_per_escalation"]
    assert recovered["value"] is None and "4 baseline sample" in recovered["reason"]
    assert data["hours_saved_per_week"]["value"] is None
    assert "minutes recovered" in data["hours_saved_per_week"]["reason"]
    assert data["time_to_first_action_seconds"] == {"median": 240.0, "p90": 504.0, "n": 5}


def test_in_product_under_five_gives_null_with_reason(app, client, admin_headers):
    s = seed(app, client, admin_headers, with_e5=False)
    data = analytics(client, s["admin"])
    # TTFA 60 120 240 360: median 180, p90 rank 2.7 = 240 + 0.7 * 120 = 324
    ttfa = data["time_to_first_action_seconds"]
    assert ttfa["median"] == 180.0 and ttfa["p90"] == pytest.approx(324.0) and ttfa["n"] == 4
    recovered = data["minutes_recovered_per_escalation"]
    assert recovered["value"] is None
    assert "4 escalation(s) with a claim and a first action" in recovered["reason"]
    assert "baseline" not in recovered["reason"]  # the baseline has its five


def test_empty_tenant_has_no_figures_and_no_division_by_zero(app, client, admin_headers):
    _tenant(client, admin_headers, "empty")
    headers = _member(client, admin_headers, "empty", "admin")
    data = analytics(client, headers)
    assert data["count"] == 0 and data["escalations_per_week"] == 0
    assert data["time_to_first_action_seconds"] == {"median": None, "p90": None, "n": 0}
    assert data["ai"]["cost_per_escalation_usd"] is None
    assert data["ai"]["fallback_rate"] is None
    assert data["baseline"] == {"n": 0, "median_minutes": None}
    assert data["minutes_recovered_per_escalation"]["value"] is None


# --- tenant isolation ------------------------------------------------------------------------


def test_the_other_tenants_rows_never_count(client, seeded):
    other = analytics(client, seeded["other_admin"])
    assert other["count"] == 3
    assert other["time_to_first_action_seconds"] == {"median": 5.0, "p90": 5.0, "n": 3}
    assert other["baseline"] == {"n": 5, "median_minutes": 100.0}
    assert other["ai"]["input_tokens_per_escalation"] == 50000
    # and acme's figures are the hand-computed ones, untouched by other's rows
    acme = analytics(client, seeded["admin"])
    assert acme["count"] == 7 and acme["baseline"]["median_minutes"] == 10.0
    assert acme["ai"]["input_tokens_per_escalation"] == pytest.approx(7500 / 7)
    # the CSV and the weekly chart too
    rows = list(csv.DictReader(io.StringIO(csv_text(client, seeded["admin"]))))
    assert {r["ticket"] for r in rows} == {f"#E{i}" for i in range(1, 8)}
    weeks = client.get("/api/v1/analytics/weekly", headers=seeded["admin"]).get_json()
    assert sum(w["n"] for w in weeks) == 5


# --- the verdict -----------------------------------------------------------------------------


def test_verdict_too_early_without_a_pilot_start(client, seeded):
    verdict = analytics(client, seeded["admin"])["verdict"]
    assert verdict["outcome"] == "too_early" and verdict["due_on"] is None
    assert "no pilot start date" in verdict["reason"]
    assert verdict["threshold_hours"] == 1.0


def test_verdict_too_early_before_week_eight_says_when(client, seeded):
    started = date.today() - timedelta(days=20)
    response = set_pilot(client, seeded["admin"], pilot_started_on=started.isoformat())
    assert response.status_code == 200
    assert response.get_json() == {
        "pilot_started_on": started.isoformat(),
        "verdict_threshold_hours": 1.0,
    }
    verdict = analytics(client, seeded["admin"])["verdict"]
    due = (started + timedelta(days=56)).isoformat()
    assert verdict["outcome"] == "too_early" and verdict["due_on"] == due
    assert due in verdict["reason"]


def test_verdict_not_enough_data_at_week_eight(app, client, admin_headers):
    s = seed(app, client, admin_headers, baseline=BASELINE[:4])
    started = s["now"].date() - timedelta(days=60)
    set_pilot(client, s["admin"], pilot_started_on=started.isoformat())
    verdict = analytics(client, s["admin"])["verdict"]
    assert verdict["outcome"] == "not_enough_data"
    assert "4 baseline sample" in verdict["reason"]


def test_verdict_revisit_below_and_keep_above_the_threshold(client, seeded):
    started = seeded["now"].date() - timedelta(days=56)  # week 8 reached today
    set_pilot(client, seeded["admin"], pilot_started_on=started.isoformat())
    # 0.0875 hours saved a week < 1.0
    verdict = analytics(client, seeded["admin"])["verdict"]
    assert verdict["outcome"] == "revisit", verdict

    assert set_pilot(client, seeded["admin"], verdict_threshold_hours=0.08).status_code == 200
    verdict = analytics(client, seeded["admin"])["verdict"]
    assert verdict["outcome"] == "keep" and verdict["threshold_hours"] == 0.08
    assert verdict["pilot_started_on"] == started.isoformat()


def test_pilot_settings_need_an_admin_and_valid_values(client, seeded):
    assert set_pilot(client, seeded["engineer"], verdict_threshold_hours=2).status_code == 403
    assert set_pilot(client, seeded["technician"], verdict_threshold_hours=2).status_code == 403
    for bad in ({"verdict_threshold_hours": 0}, {"verdict_threshold_hours": -1}, {}):
        assert set_pilot(client, seeded["admin"], **bad).status_code == 422, bad
    assert set_pilot(client, seeded["admin"], pilot_started_on="not a date").status_code == 422
    cleared = set_pilot(client, seeded["admin"], pilot_started_on=None)
    assert cleared.status_code == 200 and cleared.get_json()["pilot_started_on"] is None


# --- roles and validation --------------------------------------------------------------------


READ_URLS = (
    "/api/v1/analytics/escalations",
    "/api/v1/analytics/escalations.csv",
    "/api/v1/analytics/weekly",
    "/api/v1/analytics/baseline",
)


def test_reads_are_for_engineers_and_admins(client, seeded):
    for url in READ_URLS:
        assert client.get(url).status_code == 401, url
        forbidden = client.get(url, headers=seeded["technician"])
        assert forbidden.status_code == 403, url
        assert forbidden.get_json()["error"]["code"] == "forbidden"
        assert client.get(url, headers=seeded["engineer"]).status_code == 200, url
        assert client.get(url, headers=seeded["admin"]).status_code == 200, url


@pytest.mark.parametrize("days", ["0", "366", "-3", "abc", "1.5"])
def test_days_out_of_range_is_422(client, seeded, days):
    for url in ("/api/v1/analytics/escalations", "/api/v1/analytics/escalations.csv"):
        response = client.get(f"{url}?days={days}", headers=seeded["admin"])
        assert response.status_code == 422, (url, days)
        assert response.get_json()["error"]["code"] == "invalid_request"


def test_days_at_the_bounds_are_accepted(client, seeded):
    assert analytics(client, seeded["admin"], days=1)["count"] == 0
    assert analytics(client, seeded["admin"], days=365)["count"] == 8


# --- baseline CRUD ---------------------------------------------------------------------------


def test_baseline_crud_with_roles(client, seeded):
    admin, engineer = seeded["admin"], seeded["engineer"]
    body = {"minutes": 14.5, "ticket": "T-1001", "note": "printer, stopwatched by Kim"}
    for headers in (engineer, seeded["technician"]):
        assert (
            client.post("/api/v1/analytics/baseline", json=body, headers=headers).status_code == 403
        )
    created = client.post("/api/v1/analytics/baseline", json=body, headers=admin)
    assert created.status_code == 201
    sample = created.get_json()
    assert sample["minutes"] == 14.5 and sample["ticket"] == "T-1001"
    assert sample["recorded_by"] == "Admin of acme"

    listed = client.get("/api/v1/analytics/baseline", headers=engineer).get_json()
    assert len(listed) == 6 and listed[-1]["id"] == sample["id"]
    # 8 9 10 12 14.5 15: median 11
    assert analytics(client, engineer)["baseline"] == {"n": 6, "median_minutes": 11.0}

    url = f"/api/v1/analytics/baseline/{sample['id']}"
    assert client.delete(url, headers=engineer).status_code == 403
    assert client.delete(url, headers=seeded["other_admin"]).status_code == 404
    assert client.delete(url, headers=admin).status_code == 204
    assert client.delete(url, headers=admin).status_code == 404
    assert len(client.get("/api/v1/analytics/baseline", headers=admin).get_json()) == 5
    # other tenant's samples are invisible to acme and cannot be deleted by acme
    theirs = client.get("/api/v1/analytics/baseline", headers=seeded["other_admin"]).get_json()
    assert len(theirs) == 5 and {s["minutes"] for s in theirs} == {100.0}
    response = client.delete(f"/api/v1/analytics/baseline/{theirs[0]['id']}", headers=admin)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_baseline_sample"


@pytest.mark.parametrize(
    "body",
    [
        {"minutes": 0},
        {"minutes": -2},
        {"minutes": 480.5},
        {},
        {"minutes": "soon"},
        {"minutes": 5, "ticket": "x" * 65},
    ],
)
def test_baseline_validation(client, seeded, body):
    response = client.post("/api/v1/analytics/baseline", json=body, headers=seeded["admin"])
    assert response.status_code == 422, body


def test_baseline_bounds_are_inclusive_at_480(client, seeded):
    response = client.post(
        "/api/v1/analytics/baseline", json={"minutes": 480}, headers=seeded["admin"]
    )
    assert response.status_code == 201
    assert response.get_json()["ticket"] == "" and response.get_json()["note"] == ""


# --- weekly ----------------------------------------------------------------------------------


def iso(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def test_weekly_medians(client, seeded):
    response = client.get("/api/v1/analytics/weekly", headers=seeded["engineer"])
    assert response.status_code == 200
    weeks = response.get_json()
    assert len(weeks) == 8
    assert weeks[-1]["week"] == iso(datetime.now(UTC).date())
    by_week = {w["week"]: w for w in weeks}
    received = seeded["received"]
    # E1 E2 E3 (120 240 360) were received in one ISO week, E4 E5 (60 600) a week later
    first = by_week[iso(received["E1"].date())]
    assert iso(received["E3"].date()) == first["week"]
    assert (first["median_seconds"], first["n"]) == (240.0, 3)
    second = by_week[iso(received["E4"].date())]
    assert iso(received["E5"].date()) == second["week"]
    assert (second["median_seconds"], second["n"]) == (330.0, 2)
    others = [w for w in weeks if w not in (first, second)]
    assert all(w["n"] == 0 and w["median_seconds"] is None for w in others)
    assert (
        client.get("/api/v1/analytics/weekly?weeks=0", headers=seeded["admin"]).status_code == 422
    )
    assert (
        len(client.get("/api/v1/analytics/weekly?weeks=2", headers=seeded["admin"]).get_json()) == 2
    )


# --- CSV ---------------------------------------------------------------------------------------


def csv_text(client, headers, days: int | None = None) -> str:
    url = "/api/v1/analytics/escalations.csv" + (f"?days={days}" if days else "")
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return response.get_data(as_text=True)


def test_csv_has_one_row_per_escalation_behind_the_figures(client, seeded):
    rows = list(csv.DictReader(io.StringIO(csv_text(client, seeded["admin"]))))
    assert [r["ticket"] for r in rows] == [f"#E{i}" for i in range(1, 8)]
    e2 = rows[1]
    assert e2["id"] == str(seeded["ids"]["E2"])
    assert e2["time_to_first_action_s"] == "240.0"
    assert (e2["handoff_state"], e2["handoff_source"], e2["time_to_ready_s"]) == (
        "ready",
        "ai",
        "12.0",
    )
    assert (e2["summary_calls"], e2["tone_calls"]) == ("1", "1")
    assert (e2["input_tokens"], e2["output_tokens"]) == ("2500", "500")
    # 2000 * 3 + 400 * 15 + 500 * 1 + 100 * 5 = 13000 per MTok
    assert e2["cost_usd"] == "0.013000"
    assert datetime.fromisoformat(e2["received_at"]) == seeded["received"]["E2"]
    e6, e7 = rows[5], rows[6]
    assert (e6["first_action_at"], e6["time_to_first_action_s"], e6["generated_at"]) == ("", "", "")
    assert e6["handoff_state"] == "pending" and e6["cost_usd"] == "0.000000"
    assert e7["claimed_at"] == "" and e7["time_to_ready_s"] == "4.0"
    # the rows give back the figures: 5 TTFA values, total tokens
    assert sum(1 for r in rows if r["time_to_first_action_s"]) == 5
    assert sum(int(r["input_tokens"]) for r in rows) == 7500
    assert len(list(csv.DictReader(io.StringIO(csv_text(client, seeded["admin"], days=90))))) == 8


def test_csv_cells_never_start_a_formula(app, client, seeded):
    evil = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB"]
    with app.app_context():
        for i, ticket in enumerate(evil):
            _escalation(
                seeded["acme_id"], f"X{i}", seeded["now"] - timedelta(hours=1), ticket=ticket
            )
        session.commit()
        session.remove()
    rows = list(csv.DictReader(io.StringIO(csv_text(client, seeded["admin"]))))
    tickets = [r["ticket"] for r in rows[-len(evil) :]]
    assert tickets == ["'" + t for t in evil]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t")), row


def test_every_endpoint_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/analytics/escalations",
        "/api/v1/analytics/escalations.csv",
        "/api/v1/analytics/weekly",
        "/api/v1/analytics/baseline",
        "/api/v1/analytics/baseline/{sample_id}",
        "/api/v1/tenant/pilot",
    ):
        assert path in paths, path
