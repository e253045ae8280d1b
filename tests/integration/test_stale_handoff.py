"""A stale handoff says so: notes added to the ticket after the handoff was written are counted
by a light job (one read of the ticket, no model call); only Regenerate calls the model again."""

from __future__ import annotations

import json

import requests

from tests.integration.pipeline import accepted, escalation_ids, run_worker, wait_for
from tests.integration.test_streaming import PAYLOAD, get, published


def test_notes_added_after_the_handoff_make_it_stale_until_regenerated(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    fake_anthropic.set_mode("answer", payload=PAYLOAD)
    store.escalate(104512, member="kpatel", reason="Device disabled in Entra; no rights")
    wait_for(lambda: accepted(store), what="the callback")
    [escalation_id] = escalation_ids(app)
    run_worker(app)
    path = f"/api/v1/escalations/{escalation_id}"
    assert get(live, token, path)["handoff"]["new_notes"] == 0

    for text in ("Client rebooted, still prompting", "Re-enabled? No rights", "Asked Dana"):
        store.add_note(104512, text, author="kpatel", internal=True)
    wait_for(
        lambda: len([d for d in store.deliveries if d.status == 200]) == 3,
        what="three callbacks, each answered 'already escalated'",
    )
    run_worker(app)  # the light count: one read of the ticket, no model call
    handoff = get(live, token, path)["handoff"]
    assert handoff["new_notes"] == 3 and handoff["state"] == "ready"
    assert len(fake_anthropic.message_requests()) == 1
    assert published(app, escalation_id, "handoff.stale") == [
        {"escalation_id": escalation_id, "new_notes": 3}
    ]

    regenerated = requests.post(
        f"{live.url}{path}/regenerate", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert regenerated.status_code == 202
    assert regenerated.json()["handoff"]["new_notes"] == 0
    run_worker(app)
    handoff = get(live, token, path)["handoff"]
    assert handoff["state"] == "ready" and handoff["new_notes"] == 0
    assert len(fake_anthropic.message_requests()) == 2
    assert "Asked Dana" in json.dumps(fake_anthropic.message_requests()[-1].body)
