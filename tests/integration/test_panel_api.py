"""The panel's JSON API: the queue, claim, read, actions, regenerate, escalate from the panel."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from connector.queue import job_status
from tests.integration.panel_setup import (
    add_member,
    connect_sandbox,
    make_tenant,
    record_escalation,
    run_worker,
    sandbox,  # noqa: F401 (a fixture)
    stream_events,
    wait_for,
)


@pytest.fixture
def acme(app, client, admin_headers):
    """Tenant acme (a technician, two engineers, an admin) and tenant globex (an engineer)."""
    make_tenant(client, admin_headers, "acme")
    make_tenant(client, admin_headers, "globex")
    people = {
        "tech": add_member(client, admin_headers, "acme", "kpatel", "technician", "Kiran Patel"),
        "tech2": add_member(client, admin_headers, "acme", "tnguyen", "technician", "Tam Nguyen"),
        "sam": add_member(client, admin_headers, "acme", "sseniorr", "engineer", "Sam Senior"),
        "erin": add_member(client, admin_headers, "acme", "eengineer", "engineer", "Erin Eng"),
        "admin": add_member(client, admin_headers, "acme", "admin", "admin", "Alex Admin"),
        "globex": add_member(client, admin_headers, "globex", "gsenior", "engineer", "Gus"),
    }
    return {name: headers for name, (_id, headers) in people.items()}, {
        name: member_id for name, (member_id, _h) in people.items()
    }


def test_the_queue_is_newest_first_with_age_and_unread(app, client, acme):
    headers, _ids = acme
    first = record_escalation(app, "acme", "1001", actor="kpatel", reason="VPN drops")
    second = record_escalation(app, "acme", "1002", actor="tnguyen")
    third = record_escalation(app, "acme", "1003", actor="kpatel")
    record_escalation(app, "globex", "9001", actor="someone")

    queue = client.get("/api/v1/escalations", headers=headers["sam"])
    assert queue.status_code == 200
    items = queue.get_json()["items"]
    assert [i["id"] for i in items] == [third, second, first]
    assert all(i["unread"] for i in items)
    assert all(isinstance(i["age_seconds"], int) and i["age_seconds"] >= 0 for i in items)
    oldest = items[-1]
    assert oldest["reason"] == "VPN drops" and oldest["ticket"]["id"] == "1001"
    assert oldest["handoff"]["state"] == "pending" and oldest["claim"] is None
    assert oldest["state"] == "open" and oldest["escalated_by"] == "kpatel"

    limited = client.get("/api/v1/escalations?limit=2", headers=headers["sam"]).get_json()
    assert [i["id"] for i in limited["items"]] == [third, second]

    # A technician sees only what they escalated.
    mine = client.get("/api/v1/escalations", headers=headers["tech"]).get_json()["items"]
    assert [i["id"] for i in mine] == [third, first]
    assert client.get(f"/api/v1/escalations/{second}", headers=headers["tech"]).status_code == 404

    # Reading flips unread for this member only.
    assert (
        client.post(f"/api/v1/escalations/{first}/read", headers=headers["sam"]).status_code == 204
    )
    assert (
        client.post(f"/api/v1/escalations/{first}/read", headers=headers["sam"]).status_code == 204
    )
    after = client.get("/api/v1/escalations", headers=headers["sam"]).get_json()["items"]
    assert {i["id"]: i["unread"] for i in after} == {first: False, second: True, third: True}
    others = client.get("/api/v1/escalations", headers=headers["erin"]).get_json()["items"]
    assert all(i["unread"] for i in others)


def test_queue_state_filter_and_bad_arguments(app, client, acme):
    headers, _ids = acme
    open_one = record_escalation(app, "acme", "1001")
    claimed = record_escalation(app, "acme", "1002")
    assert (
        client.post(f"/api/v1/escalations/{claimed}/claim", headers=headers["sam"]).status_code
        == 200
    )

    def ids(state: str) -> list[int]:
        answer = client.get(f"/api/v1/escalations?state={state}", headers=headers["erin"])
        return [i["id"] for i in answer.get_json()["items"]]

    assert ids("open") == [open_one]
    assert ids("claimed") == [claimed]
    assert ids("all") == [claimed, open_one]
    for bad in ("state=closed", "limit=0", "limit=201", "limit=x"):
        answer = client.get(f"/api/v1/escalations?{bad}", headers=headers["sam"])
        assert answer.status_code == 422, bad
        assert answer.get_json()["error"]["code"] == "invalid_request"


def test_everything_needs_a_member(app, client, acme):
    escalation = record_escalation(app, "acme", "1001")
    calls = [
        ("get", "/api/v1/escalations", None),
        ("get", "/api/v1/me", None),
        ("post", f"/api/v1/escalations/{escalation}/claim", None),
        ("post", f"/api/v1/escalations/{escalation}/read", None),
        ("post", f"/api/v1/escalations/{escalation}/actions", {"kind": "step_used"}),
        ("post", f"/api/v1/escalations/{escalation}/regenerate", None),
        ("post", "/api/v1/tickets/1001/escalate", {"reason": "stuck"}),
        ("get", "/api/v1/stream", None),
    ]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer bt_not-a-real-token"}):
            answer = getattr(client, method)(path, json=body, headers=headers)
            assert answer.status_code == 401, (method, path)
            assert answer.get_json()["error"]["code"] == "unauthorized"


def test_claim_decides_once_and_says_who_has_it(app, client, acme):
    headers, ids = acme
    escalation = record_escalation(app, "acme", "1001", actor="kpatel")
    path = f"/api/v1/escalations/{escalation}/claim"

    refused = client.post(path, headers=headers["tech"])
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"

    won = client.post(path, headers=headers["sam"])
    assert won.status_code == 200, won.text
    body = won.get_json()
    assert body["state"] == "claimed"
    assert body["claim"]["member_id"] == ids["sam"] and body["claim"]["name"] == "Sam Senior"

    again = client.post(path, headers=headers["sam"])
    assert again.status_code == 200
    assert again.get_json()["claim"]["claimed_at"] == body["claim"]["claimed_at"]

    lost = client.post(path, headers=headers["admin"])
    assert lost.status_code == 409
    conflict = lost.get_json()
    assert conflict["error"]["code"] == "already_claimed"
    assert conflict["error"]["message"] == "Already picked up by Sam Senior"
    assert conflict["claimed_by"] == "Sam Senior"
    assert conflict["claimed_at"].startswith(body["claim"]["claimed_at"][:19])

    # One event for the one claim, and the claimer has read it.
    claimed_events = [f for kind, f in stream_events(app, "acme") if kind == "escalation.claimed"]
    assert len(claimed_events) == 1 and '"claimed_by": "Sam Senior"' in claimed_events[0]["data"]
    queue = client.get("/api/v1/escalations?state=claimed", headers=headers["sam"]).get_json()
    assert queue["items"][0]["unread"] is False


def test_unknown_and_foreign_escalations_are_404(app, client, acme):
    headers, _ids = acme
    foreign = record_escalation(app, "globex", "9001")
    ours = record_escalation(app, "acme", "1001")
    for escalation_id in (foreign, 999999):
        for method, suffix, body in (
            ("get", "", None),
            ("post", "/claim", None),
            ("post", "/read", None),
            ("post", "/actions", {"kind": "step_used"}),
            ("post", "/regenerate", None),
        ):
            path = f"/api/v1/escalations/{escalation_id}{suffix}"
            answer = getattr(client, method)(path, json=body, headers=headers["sam"])
            assert answer.status_code == 404, (path, answer.text)
            assert answer.get_json()["error"]["code"] == "unknown_escalation"
    # ...and globex's member cannot reach ours either.
    answer = client.post(f"/api/v1/escalations/{ours}/claim", headers=headers["globex"])
    assert answer.status_code == 404


def test_first_action_is_set_once_and_only_after_the_claim(app, client, acme):
    headers, _ids = acme
    escalation = record_escalation(app, "acme", "1001", actor="kpatel")
    actions = f"/api/v1/escalations/{escalation}/actions"

    early = client.post(actions, json={"kind": "ticket_opened"}, headers=headers["sam"])
    assert early.status_code == 201 and early.get_json()["first_action_at"] is None
    own = client.post(actions, json={"kind": "note_posted", "detail": "x"}, headers=headers["tech"])
    assert own.status_code == 201 and own.get_json()["first_action_at"] is None

    assert (
        client.post(f"/api/v1/escalations/{escalation}/claim", headers=headers["sam"]).status_code
        == 200
    )
    # Someone other than the claimer acting does not start the clock.
    other = client.post(actions, json={"kind": "step_used"}, headers=headers["erin"])
    assert other.status_code == 201 and other.get_json()["first_action_at"] is None

    first = client.post(
        actions,
        json={"kind": "step_used", "detail": "Re-enable the device"},
        headers=headers["sam"],
    )
    assert first.status_code == 201
    body = first.get_json()
    assert body["kind"] == "step_used" and body["detail"] == "Re-enable the device"
    assert body["first_action_at"] == body["created_at"]

    second = client.post(actions, json={"kind": "variant_copied"}, headers=headers["sam"])
    assert second.get_json()["first_action_at"] == body["first_action_at"]
    detail = client.get(f"/api/v1/escalations/{escalation}", headers=headers["sam"]).get_json()
    assert detail["first_action_at"] == body["first_action_at"]

    for bad in ({"kind": "lunch"}, {}, {"kind": "step_used", "detail": "x" * 2001}):
        answer = client.post(actions, json=bad, headers=headers["sam"])
        assert answer.status_code == 422, bad


def test_technicians_cannot_regenerate(app, client, acme):
    headers, _ids = acme
    escalation = record_escalation(app, "acme", "1001", actor="kpatel")
    answer = client.post(f"/api/v1/escalations/{escalation}/regenerate", headers=headers["tech"])
    assert answer.status_code == 403


def test_a_senior_writes_what_fixed_it_redacted_and_it_counts_as_an_action(app, client, acme):
    headers, _ids = acme
    escalation = record_escalation(app, "acme", "1001", actor="kpatel")
    path = f"/api/v1/escalations/{escalation}/resolution"
    claimed = client.post(f"/api/v1/escalations/{escalation}/claim", headers=headers["sam"])
    assert claimed.status_code == 200
    fix = "Reset the VPN PSK to password: Hunter2Hunter2! and re-applied the IPsec proposal"

    # Bad input and the wrong people change nothing.
    for bad in ({}, {"text": 5}, {"text": "x" * 4001}):
        assert client.put(path, json=bad, headers=headers["sam"]).status_code == 422, bad
    assert client.put(path, json={"text": fix}, headers=headers["tech"]).status_code == 403
    foreign = client.put(path, json={"text": fix}, headers=headers["globex"])
    assert foreign.status_code == 404
    assert (
        client.get(f"/api/v1/escalations/{escalation}", headers=headers["sam"]).get_json()[
            "resolution"
        ]
        is None
    )

    saved = client.put(path, json={"text": fix}, headers=headers["sam"])
    assert saved.status_code == 200, saved.text
    body = saved.get_json()
    assert body["resolution"]["source"] == "panel"
    assert body["resolution"]["resolved_by"] == "Sam Senior"
    assert "Hunter2Hunter2!" not in body["resolution"]["text"]  # redacted like the ticket
    assert "re-applied the IPsec proposal" in body["resolution"]["text"]
    assert body["first_action_at"] is not None

    cleared = client.put(path, json={"text": "  "}, headers=headers["sam"]).get_json()
    assert cleared["resolution"] is None


def test_fifty_seniors_claim_at_once_over_http(app_factory, live_server_factory, admin_headers):
    app = app_factory()
    live = live_server_factory(app)
    http = requests.Session()
    make_tenant(http, admin_headers, "acme", base=live.url)
    seniors = [
        add_member(http, admin_headers, "acme", f"senior{i}", "engineer", f"Senior {i}", live.url)
        for i in range(50)
    ]
    escalation = record_escalation(app, "acme", "1001")
    barrier = threading.Barrier(50)

    def claim(member: tuple[int, dict[str, str]]) -> requests.Response:
        barrier.wait()
        return requests.post(
            f"{live.url}/api/v1/escalations/{escalation}/claim", headers=member[1], timeout=60
        )

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(claim, seniors))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 49, statuses
    [winner] = [a.json() for a in answers if a.status_code == 200]
    name = winner["claim"]["name"]
    losers = [a.json() for a in answers if a.status_code == 409]
    assert {body["claimed_by"] for body in losers} == {name}
    assert {body["error"]["message"] for body in losers} == {f"Already picked up by {name}"}


# --- through the sandbox PSA: escalate from the panel, regenerate -----------------------------


@pytest.fixture
def connected(app, client, admin_headers, sandbox):  # noqa: F811
    store, server = sandbox
    make_tenant(client, admin_headers, "acme")
    connect_sandbox(client, admin_headers, "acme", store, server.site("connectwise"))
    _tid, tech = add_member(client, admin_headers, "acme", "kpatel", "technician", "Kiran")
    _sid, senior = add_member(client, admin_headers, "acme", "sseniorr", "engineer", "Sam")
    return store, tech, senior


def test_a_technician_escalates_from_the_panel(app, client, connected, fake_anthropic):
    store, tech, senior = connected
    ticket = 104512
    answer = client.post(
        f"/api/v1/tickets/{ticket}/escalate",
        json={"reason": "Device shows Disabled in Entra; no rights to fix"},
        headers=tech,
    )
    assert answer.status_code == 201, answer.text
    body = answer.get_json()
    assert body["ticket"]["id"] == str(ticket) and body["escalated_by"] == "kpatel"
    assert body["reason"] == "Device shows Disabled in Entra; no rights to fix"
    assert body["handoff"]["state"] == "pending"
    assert store.ticket(ticket).status == "Escalated"
    assert [kind for kind, _ in stream_events(app, "acme")] == ["escalation.created"]

    mine = client.get("/api/v1/escalations", headers=tech).get_json()["items"]
    assert [i["id"] for i in mine] == [body["id"]]

    # The PSA's own callback for the change (here: the technician saves the ticket again).
    deliveries = len(store.deliveries)
    store.escalate(ticket, member="kpatel", reason="also tried a reboot")
    again = client.post(f"/api/v1/tickets/{ticket}/escalate", json={"reason": "x"}, headers=tech)
    assert again.status_code == 409
    assert again.get_json()["escalation_id"] == body["id"]
    assert again.get_json()["error"]["code"] == "already_escalated"

    run_worker(app)
    detail = client.get(f"/api/v1/escalations/{body['id']}", headers=senior).get_json()
    assert detail["handoff"]["state"] == "ready"
    assert len(fake_anthropic.message_requests()) == 1
    queue = client.get("/api/v1/escalations?state=all", headers=senior).get_json()["items"]
    assert len(queue) == 1, "the PSA's callback did not make a second escalation"
    assert len(store.deliveries) >= deliveries


def test_escalate_errors(app, client, connected):
    _store, tech, _senior = connected
    blank = client.post("/api/v1/tickets/104512/escalate", json={"reason": "   "}, headers=tech)
    assert blank.status_code == 422
    long = client.post("/api/v1/tickets/104512/escalate", json={"reason": "x" * 4001}, headers=tech)
    assert long.status_code == 422
    missing = client.post("/api/v1/tickets/104512/escalate", json={}, headers=tech)
    assert missing.status_code == 422
    for ticket in ("424242", "not-a-number"):
        answer = client.post(
            f"/api/v1/tickets/{ticket}/escalate", json={"reason": "x"}, headers=tech
        )
        assert answer.status_code == 502, answer.text
        assert answer.get_json()["error"]["code"] == "psa_error"
        assert ticket in answer.get_json()["error"]["message"]


def test_regenerate_makes_a_new_call_and_keeps_one_note(app, client, connected, fake_anthropic):
    store, tech, senior = connected
    ticket = 105033
    created = client.post(
        f"/api/v1/tickets/{ticket}/escalate", json={"reason": "Outlook keeps asking"}, headers=tech
    ).get_json()
    run_worker(app)
    escalation = created["id"]
    assert (
        client.get(f"/api/v1/escalations/{escalation}", headers=senior).get_json()["handoff"][
            "state"
        ]
        == "ready"
    )
    notes = [n for n in store.notes(ticket) if "[baton-handoff" in n.text]
    assert len(notes) == 1

    answer = client.post(f"/api/v1/escalations/{escalation}/regenerate", headers=senior)
    assert answer.status_code == 202, answer.text
    handoff = answer.get_json()["handoff"]
    assert handoff["state"] == "pending"
    assert handoff["summary_prose"] == "" and handoff["suggested_steps"] == []
    assert job_status(app.extensions["baton"].redis, f"handoff-{escalation}") is not None

    run_worker(app)
    wait_for(
        lambda: (
            client.get(f"/api/v1/escalations/{escalation}", headers=senior).get_json()["handoff"][
                "state"
            ]
            == "ready"
        ),
        what="the regenerated handoff",
    )
    assert len(fake_anthropic.message_requests()) == 2
    assert len([n for n in store.notes(ticket) if "[baton-handoff" in n.text]) == 1
    kinds = [kind for kind, _ in stream_events(app, "acme")]
    assert kinds.count("handoff.ready") == 2 and "handoff.pending" in kinds
