"""End to end on ConnectWise: the sandbox PSA fires a signed callback over HTTP, a real RQ worker
runs the pipeline against the fake Anthropic server, and one internal note lands on the ticket."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.corpus import load_corpus
from tests.integration.pipeline import (
    accepted,
    audit_reasons,
    baton_notes,
    escalation_ids,
    run_worker,
    wait_for,
)

SECRET_TICKETS = [row for row in load_corpus() if row["expected"]["secrets"]]


def test_escalated_ticket_becomes_a_ready_handoff_and_one_internal_note(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    ticket = 104512
    store.escalate(
        ticket, member="kpatel", reason="Device shows Disabled in Entra; no rights to fix"
    )
    wait_for(lambda: accepted(store), what="the signed callback to be accepted")
    [escalation_id] = escalation_ids(app)

    run_worker(app)

    detail = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert detail["handoff"]["state"] == "ready"
    assert detail["handoff"]["source"] == "ai"
    assert detail["handoff"]["what_we_know"] and detail["handoff"]["suggested_steps"]
    assert detail["ticket"]["id"] == str(ticket)
    assert detail["reason"].startswith("Device shows Disabled")
    notes = baton_notes(store, ticket)
    assert len(notes) == 1 and notes[0].internal
    assert "Likely cause" in notes[0].text
    assert len(fake_anthropic.message_requests()) == 1
    request = fake_anthropic.message_requests()[0].body
    assert request["output_config"]["format"]["type"] == "json_schema"
    assert "tool_choice" not in request and "temperature" not in request

    # A retried write-back finds the note instead of writing a second one.
    from connector import escalations
    from connector.db import session
    from connector.models import Escalation

    with app.app_context():
        row = session.get(Escalation, escalation_id)
        row.note_id = None
        session.commit()
        escalations.write_back(escalation_id)
    assert len(baton_notes(store, ticket)) == 1


def test_later_saves_while_escalated_are_not_new_escalations(baton, sandbox, fake_anthropic):
    app, _live, _token = baton
    store, _server = sandbox
    store.escalate(105033, member="tnguyen")
    wait_for(lambda: len(store.deliveries) >= 1, what="first callback")
    store.add_note(105033, "Called the client back", author="tnguyen", internal=True)
    wait_for(lambda: len(store.deliveries) >= 2, what="second callback")
    assert [d.status for d in store.deliveries] == [202, 200]
    assert audit_reasons(app)[1] == "already escalated"
    # Leaving the status and entering it again is a new escalation.
    store.set_status(105033, "In Progress", actor="tnguyen")
    store.escalate(105033, member="tnguyen")
    wait_for(lambda: len(store.deliveries) >= 4, what="re-escalation callbacks")
    assert [d.status for d in store.deliveries][2:] == [200, 202]


def test_duplicate_callback_makes_one_escalation_and_one_model_call(baton, sandbox, fake_anthropic):
    """The escalation delivered 20 times at once, mixed with an older save delivered late."""
    app, _live, _token = baton
    store, _server = sandbox
    store.add_note(105390, "Checked the FortiGate logs", author="bwalsh", internal=True)
    store.escalate(105390, member="bwalsh")
    wait_for(lambda: len(store.deliveries) == 2, what="both callbacks")
    older, escalated = store.deliveries
    assert (older.status, escalated.status) == (200, 202)
    copies = [escalated] * 20 + [older] * 5
    random.Random(7).shuffle(copies)

    def redeliver(delivery):
        headers = {
            "Content-Type": "application/json",
            "x-content-signature": delivery.headers["x-content-signature"],
        }
        return requests.post(delivery.url, data=delivery.body, headers=headers, timeout=10)

    with ThreadPoolExecutor(25) as pool:
        answers = list(pool.map(redeliver, copies))
    escalated_answers = [a for a, d in zip(answers, copies, strict=True) if d is escalated]
    assert {a.status_code for a in escalated_answers} == {202}
    assert {a.status_code for a in answers} <= {200, 202}
    assert {a.json()["escalation_id"] for a in escalated_answers} == set(escalation_ids(app))
    assert len(escalation_ids(app)) == 1
    run_worker(app)
    assert len(fake_anthropic.message_requests()) == 1
    assert len(baton_notes(store, 105390)) == 1


def test_hanging_model_gives_a_fallback_within_the_deadline(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    fake_anthropic.set_mode("hang")
    store.escalate(106102, member="aokafor")
    wait_for(lambda: accepted(store), what="callback")
    [escalation_id] = escalation_ids(app)
    deadline = app.extensions["baton"].settings.ai_deadline_seconds
    started = time.monotonic()
    run_worker(app)
    elapsed = time.monotonic() - started
    assert elapsed < deadline + 2, f"took {elapsed:.1f}s with a {deadline}s deadline"
    handoff = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["handoff"]
    assert handoff["state"] == "fallback" and handoff["source"] == "fallback"
    assert handoff["confidence"] == "low" and "timeout" in handoff["failure_reason"].lower()
    assert handoff["what_we_know"], "the fallback still shows what was extracted"
    assert len(fake_anthropic.message_requests()) == 1
    assert len(baton_notes(store, 106102)) == 1


@pytest.mark.parametrize("row", SECRET_TICKETS, ids=lambda r: str(r["id"]))
def test_no_corpus_secret_reaches_the_model(baton, sandbox, fake_anthropic, row):
    app, _live, _token = baton
    store, _server = sandbox
    store.escalate(row["id"], member=row["escalated_by"], reason=row["escalation_reason"])
    wait_for(lambda: accepted(store), what="callback")
    run_worker(app)
    sent = fake_anthropic.message_requests()
    assert len(sent) == 1
    for secret in row["expected"]["secrets"]:
        assert secret not in sent[0].raw, f"{secret!r} reached the model"


def test_forged_signature_and_foreign_key_url_are_refused(baton, sandbox):
    _app, _live, _token = baton
    store, _server = sandbox
    store.escalate(107255, member="kpatel")
    wait_for(lambda: accepted(store), what="callback")
    genuine = store.deliveries[0]
    signature = genuine.headers["x-content-signature"]
    forged = requests.post(
        genuine.url,
        data=genuine.body,
        headers={"Content-Type": "application/json", "x-content-signature": "AAAA" + signature[4:]},
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"
    body = json.loads(genuine.body)
    body["MessageId"] = "attacker-1"
    body["Metadata"]["key_url"] = "https://attacker.example/key"
    foreign = requests.post(genuine.url, json=body, headers={"x-content-signature": signature})
    assert foreign.status_code == 401
    unsigned = requests.post(
        genuine.url, data=genuine.body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
