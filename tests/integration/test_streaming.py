"""The handoff streams: the API shows the fields while the fake model writes them slowly, from
exactly one call; only the final answer becomes the note and the ticket-notes variant."""

from __future__ import annotations

import json
import threading
import time

import requests

from connector import events
from tests.integration.pipeline import (
    accepted,
    baton_notes,
    escalation_ids,
    start_worker_thread,
    wait_for,
)

PAYLOAD = {
    "tried": [
        {"action": "Cleared the stored Office credentials", "result": "prompt back in 5 min"},
        {"action": "Built a new Outlook profile", "result": "same prompt after 10 min"},
    ],
    "likely_cause": "The laptop is disabled in Entra, so Outlook cannot get a device token.",
    "confidence": "high",
    "what_we_know": ["Webmail and Teams work", "dsregcmd: DeviceAuthStatus FAILED"],
    "suggested_steps": ["Re-enable KV-LT-0231 in Entra ID"],
    "open_questions": ["Will the stale-device runbook disable it again tonight?"],
    "summary_prose": "Outlook prompts for a password every few minutes. The device is "
    "disabled in Entra since yesterday. Re-enabling it should end the prompts.",
}
ORDER = list(PAYLOAD)  # the schema's order, which the model writes in


def get(live, token, path: str) -> dict:
    answer = requests.get(
        f"{live.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def written(handoff: dict) -> list[str]:
    return [name for name in ORDER if handoff[name]]


def published(app, escalation_id: int, kind: str) -> list[dict]:
    """The events of `kind` about this escalation on its tenant's live stream."""
    from connector.db import session
    from connector.models import Escalation

    with app.app_context():
        tenant_id = session.get(Escalation, escalation_id).tenant_id
        session.remove()
    entries = app.extensions["baton"].redis.xrange(events.stream_key(tenant_id))
    return [json.loads(e[b"data"]) for _, e in entries if e[b"kind"] == kind.encode()]


def escalate_and_work(app, store, ticket: int = 104512) -> tuple[int, threading.Thread]:
    store.escalate(ticket, member="kpatel", reason="Device disabled in Entra; no rights")
    wait_for(lambda: accepted(store), what="the callback")
    [escalation_id] = escalation_ids(app)
    return escalation_id, start_worker_thread(app)


def test_the_fields_are_readable_while_the_model_writes_them(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(ai_deadline_seconds=30)
    fake_anthropic.set_mode("answer", payload=PAYLOAD, ttft=0.3, pace=40)
    escalation_id, worker = escalate_and_work(app, store)

    seen: list[dict] = []
    while worker.is_alive() or not seen or seen[-1]["state"] == "pending":
        handoff = get(live, token, f"/api/v1/escalations/{escalation_id}")["handoff"]
        if not seen or handoff != seen[-1]:
            seen.append(handoff)
        time.sleep(0.05)
    worker.join()

    writing = [h for h in seen if h["writing"]]
    assert writing and all(h["state"] == "pending" for h in writing)
    # Field after field, in the order the model writes them; the prose by whole sentences.
    stages = [written(h) for h in writing]
    assert all(stage == ORDER[: len(stage)] for stage in stages)
    assert len({len(stage) for stage in stages}) >= 4
    assert stages[0][0] == "tried" and "summary_prose" not in stages[0]
    prose = PAYLOAD["summary_prose"]
    assert any(
        h["summary_prose"] != prose and prose.startswith(h["summary_prose"][:-1] + ".")
        for h in writing
        if h["summary_prose"]
    )
    final = seen[-1]
    assert final["state"] == "ready" and not final["writing"] and final["unfinished"] is None
    assert {name: final[name] for name in ORDER} == PAYLOAD
    assert len(fake_anthropic.message_requests()) == 1

    # Saved at a bounded rate: a handful of updates, not one per token.
    tokens = len(json.dumps(PAYLOAD)) // 4
    assert 4 <= len(published(app, escalation_id, "handoff.writing")) < tokens / 5

    # Only the final, validated answer becomes the note and the ticket-notes variant.
    [note] = baton_notes(store, 104512)
    assert "What was tried:\n- Cleared the stored Office credentials: prompt back in 5 min" in (
        note.text
    )
    assert "Open questions:\n- Will the stale-device runbook" in note.text
    notes = get(live, token, f"/api/v1/escalations/{escalation_id}/variants/ticket_notes")
    assert note.text.endswith(notes["text"])  # ConnectWise notes start with their title


def test_the_ticket_notes_asked_for_while_writing_are_the_final_ones(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(ai_deadline_seconds=30)
    fake_anthropic.set_mode("answer", payload=PAYLOAD, ttft=0.2, pace=60)
    escalation_id, worker = escalate_and_work(app, store)
    wait_for(
        lambda: get(live, token, f"/api/v1/escalations/{escalation_id}")["handoff"]["writing"],
        what="the model to start writing",
    )
    notes = get(live, token, f"/api/v1/escalations/{escalation_id}/variants/ticket_notes")
    worker.join()
    assert notes["text"].startswith(PAYLOAD["summary_prose"])
    assert "Suggested next steps:\n1. Re-enable KV-LT-0231 in Entra ID" in notes["text"]
