"""GET /api/v1/stream over a live server: a webhook-made escalation arrives live, then its
handoff; a reconnect resumes after Last-Event-ID; another tenant hears nothing of it."""

from __future__ import annotations

import json

import pytest
import requests

from tests.integration.panel_setup import (
    SSEReader,
    add_member,
    connect_sandbox,
    make_tenant,
    run_worker,
    sandbox,  # noqa: F401 (a fixture)
    wait_for,
)


@pytest.fixture
def baton(app_factory, live_server_factory, admin_headers, sandbox):  # noqa: F811
    """acme on the sandbox PSA with its callback installed; globex beside it."""
    store, server = sandbox
    app = app_factory()
    app.config.update(BATON_SSE_HEARTBEAT_SECONDS=0.3, BATON_SSE_MAX_SECONDS=30)
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    http = requests.Session()
    make_tenant(http, admin_headers, "acme", base=live.url)
    connect_sandbox(http, admin_headers, "acme", store, server.site("connectwise"), base=live.url)
    installed = http.post(
        f"{live.url}/api/v1/admin/tenants/acme/webhooks/install", headers=admin_headers
    )
    assert installed.status_code == 200, installed.text
    make_tenant(http, admin_headers, "globex", base=live.url)
    people = {
        "sam": add_member(http, admin_headers, "acme", "sseniorr", "engineer", "Sam", live.url),
        "kpatel": add_member(http, admin_headers, "acme", "kpatel", "technician", "K", live.url),
        "tnguyen": add_member(http, admin_headers, "acme", "tnguyen", "technician", "T", live.url),
        "gus": add_member(http, admin_headers, "globex", "gsenior", "engineer", "Gus", live.url),
    }
    readers: list[SSEReader] = []

    def listen(who: str, **headers: str) -> SSEReader:
        reader = SSEReader(f"{live.url}/api/v1/stream", {**people[who][1], **headers})
        readers.append(reader)
        return reader

    yield app, live, store, listen
    for reader in readers:
        reader.close()


def test_events_arrive_live_for_the_right_people_only(baton, fake_anthropic):
    app, _live, store, listen = baton
    sam, kpatel, tnguyen, gus = listen("sam"), listen("kpatel"), listen("tnguyen"), listen("gus")
    for reader in (sam, kpatel, tnguyen, gus):
        assert reader.response.status_code == 200
        assert reader.response.headers["Content-Type"].startswith("text/event-stream")
        assert reader.response.headers["Cache-Control"] == "no-cache"
        assert reader.response.headers["X-Accel-Buffering"] == "no"
    wait_for(lambda: "connected" in sam.comments, what="the first comment")

    store.escalate(104512, member="kpatel", reason="Device shows Disabled in Entra")
    created = sam.next_event()
    assert created["event"] == "escalation.created"
    escalation_id = json.loads(created["data"])["escalation_id"]
    assert created["id"]

    run_worker(app)
    *writing, ready = sam.until("handoff.ready")
    # While the model writes, the fields it has finished are announced (their names only).
    assert writing and {frame["event"] for frame in writing} == {"handoff.writing"}
    first = json.loads(writing[0]["data"])
    assert first["escalation_id"] == escalation_id and first["fields"] == ["tried"]
    assert json.loads(ready["data"]) == {"escalation_id": escalation_id, "state": "ready"}
    assert ready["id"] != created["id"]

    # The technician who escalated hears about it; the other technician and tenant do not.
    assert [frame["event"] for frame in kpatel.until("handoff.ready")] == [
        "escalation.created",
        *["handoff.writing"] * len(writing),
        "handoff.ready",
    ]
    assert tnguyen.drain(0.8) == []
    assert gus.drain(0.1) == []
    wait_for(lambda: "ping" in gus.comments, what="a heartbeat")


def test_a_reconnect_resumes_after_last_event_id(baton, fake_anthropic):
    app, live, store, listen = baton
    first = listen("sam")
    wait_for(lambda: "connected" in first.comments, what="the first comment")
    store.escalate(105033, member="kpatel")
    created = first.next_event()
    first.close()

    run_worker(app)  # handoff.ready is published while nobody listens

    resumed = listen("sam", **{"Last-Event-ID": created["id"]})
    missed = resumed.until("handoff.ready")[-1]
    assert (
        json.loads(missed["data"])["escalation_id"] == json.loads(created["data"])["escalation_id"]
    )
    # The query parameter does the same for clients that cannot set the header.
    again = SSEReader(
        f"{live.url}/api/v1/stream?last_event_id={created['id']}",
        {"Authorization": resumed.response.request.headers["Authorization"]},
    )
    try:
        assert again.next_event()["event"] == "handoff.writing"
    finally:
        again.close()

    # Without an id the stream starts now: nothing old is replayed.
    fresh = listen("sam")
    wait_for(lambda: "connected" in fresh.comments, what="the first comment")
    assert fresh.drain(0.8) == []


def test_a_claim_is_streamed(baton):
    _app, live, store, listen = baton
    sam = listen("sam")
    store.escalate(106102, member="kpatel")
    escalation_id = json.loads(sam.next_event()["data"])["escalation_id"]
    headers = {"Authorization": sam.response.request.headers["Authorization"]}
    claimed = requests.post(f"{live.url}/api/v1/escalations/{escalation_id}/claim", headers=headers)
    assert claimed.status_code == 200
    event = sam.next_event()
    assert event["event"] == "escalation.claimed"
    assert json.loads(event["data"])["claimed_by"] == "Sam"


def test_a_removed_members_stream_ends_at_once(baton, admin_headers):
    _app, live, _store, listen = baton
    kpatel = listen("kpatel")
    wait_for(lambda: "connected" in kpatel.comments, what="the first comment")
    _id, admin = add_member(
        requests, admin_headers, "acme", "aadmin", "admin", "Ada", base=live.url
    )
    own = {"Authorization": kpatel.response.request.headers["Authorization"]}
    kpatel_id = requests.get(f"{live.url}/api/v1/me", headers=own).json()["member"]["id"]
    removed = requests.delete(f"{live.url}/api/v1/tenant/members/{kpatel_id}", headers=admin)
    assert removed.status_code == 204
    kpatel.thread.join(timeout=5)  # the stream closes within a heartbeat (0.3 s here)
    assert not kpatel.thread.is_alive()


def test_stream_refusals(app, client, admin_headers):
    assert client.get("/api/v1/stream").status_code == 401
    make_tenant(client, admin_headers, "acme")
    _id, headers = add_member(client, admin_headers, "acme", "sseniorr", "engineer")
    bad = client.get("/api/v1/stream", headers={**headers, "Last-Event-ID": "$"})
    assert bad.status_code == 400
    bad = client.get("/api/v1/stream?last_event_id=0-0;DROP", headers=headers)
    assert bad.status_code == 400
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "text/event-stream" in json.dumps(doc["paths"]["/api/v1/stream"])
