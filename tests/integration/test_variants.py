"""Audience variants over HTTP: ticket notes from the saved handoff with no model call, the
client update and email draft as one small-model rewrite each (kept, made once even under
concurrent first requests), and publishing to the sandbox PSA only when asked."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select

from connector.db import session, utcnow
from connector.models import Action, AICall, Escalation, HandoffVariant
from tests.integration.pipeline import accepted, baton_notes, escalation_ids, run_worker, wait_for

TONE_MODEL = "claude-haiku-5-5"


def tone_requests(fake):
    return [r for r in fake.message_requests() if r.body.get("model") == TONE_MODEL]


def summary_requests(fake):
    return [r for r in fake.message_requests() if r.body.get("model") != TONE_MODEL]


def add_member(live, admin_headers, psa_member_id: str, role: str) -> dict:
    answer = requests.post(
        f"{live.url}/api/v1/admin/tenants/acme/members",
        headers=admin_headers,
        json={
            "psa_member_id": psa_member_id,
            "name": psa_member_id.title(),
            "email": f"{psa_member_id}@example.com",
            "role": role,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


class Panel:
    """One member's calls to the variants API."""

    def __init__(self, live, token: str):
        self.url = live.url
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, escalation_id: int, audience: str, **params) -> requests.Response:
        return requests.get(
            f"{self.url}/api/v1/escalations/{escalation_id}/variants/{audience}",
            headers=self.headers,
            params=params,
            timeout=30,
        )

    def publish(self, escalation_id: int, audience: str) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/escalations/{escalation_id}/variants/{audience}/publish",
            headers=self.headers,
            timeout=30,
        )


def ready_escalation(app, store, ticket: int, member: str = "kpatel") -> int:
    """Through the real pipeline: callback, worker, one summary call, a ready handoff."""
    store.escalate(ticket, member=member, reason="Need an admin to look at this")
    wait_for(lambda: accepted(store), what="the signed callback to be accepted")
    escalation_id = escalation_ids(app)[-1]
    run_worker(app)
    with app.app_context():
        escalation = session.get(Escalation, escalation_id)
        assert escalation.handoff.state == "ready" and escalation.note_id
    return escalation_id


def legacy_escalation(app, ticket: int) -> int:
    """A row recorded before handoffs existed: no handoff, no note."""
    with app.app_context():
        escalation = Escalation(
            tenant_id=_tenant_id(app),
            ticket_id=str(ticket),
            ticket_number=str(ticket),
            ticket_title="Legacy escalation",
            escalated_by="kpatel",
            delivery_key=f"legacy-{ticket}",
            received_at=utcnow(),
        )
        session.add(escalation)
        session.commit()
        return escalation.id


def _tenant_id(app) -> int:
    from connector.models import Tenant

    with app.app_context():
        return session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))


def ai_calls(app, escalation_id: int) -> list[AICall]:
    with app.app_context():
        rows = session.scalars(
            select(AICall).where(AICall.escalation_id == escalation_id).order_by(AICall.id)
        )
        return list(rows)


def variant_rows(app, escalation_id: int) -> list[HandoffVariant]:
    with app.app_context():
        query = select(HandoffVariant).where(HandoffVariant.escalation_id == escalation_id)
        return list(session.scalars(query))


# --- reading variants --------------------------------------------------------------------------


def test_ticket_notes_make_no_call_and_the_client_update_is_made_once(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    ticket_note_texts = [n.text for n in store.notes(104512)]
    escalation_id = ready_escalation(app, store, 104512)
    panel = Panel(live, token)
    assert len(fake_anthropic.message_requests()) == 1  # the pipeline's one summary call

    notes = panel.get(escalation_id, "ticket_notes")
    assert notes.status_code == 200, notes.text
    body = notes.json()
    assert body["source"] == "saved" and body["subject"] is None
    assert "Likely cause" in body["text"] and body["text"] in baton_notes(store, 104512)[0].text
    assert len(fake_anthropic.message_requests()) == 1, "ticket notes must not call the model"

    first = panel.get(escalation_id, "client_update")
    assert first.status_code == 200, first.text
    update = first.json()
    assert update["source"] == "transformed" and update["model"] == TONE_MODEL
    assert update["text"].startswith("Rewritten:") and update["subject"] is None
    assert len(tone_requests(fake_anthropic)) == 1

    for _ in range(10):
        again = panel.get(escalation_id, "client_update")
        assert again.status_code == 200 and again.json() == update
    assert len(tone_requests(fake_anthropic)) == 1, "a kept rewrite makes no further call"

    # The rewrite's input is the saved handoff only, with thinking off and no temperature.
    [sent] = tone_requests(fake_anthropic)
    with app.app_context():
        handoff = session.get(Escalation, escalation_id).handoff
        assert handoff.summary_prose in sent.raw and handoff.likely_cause in sent.raw
    for text in ticket_note_texts:
        assert text[:60] not in sent.raw, "a ticket note reached the tone request"
    assert "ScreenConnect" not in sent.raw and "Credential Manager" not in sent.raw
    assert sent.body["thinking"] == {"type": "disabled"}
    assert "temperature" not in sent.body and "output_config" not in sent.body
    assert sent.body["max_tokens"] <= 2048
    assert "[baton-handoff" not in sent.raw, "Baton's internal marker is not client material"

    rows = [r for r in ai_calls(app, escalation_id) if r.purpose == "tone:client_update"]
    assert len(rows) == 1 and rows[0].outcome == "ok" and rows[0].model == TONE_MODEL
    assert rows[0].input_tokens > 0 and rows[0].output_tokens > 0


def test_twenty_concurrent_first_requests_make_one_call(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 105033, member="tnguyen")
    fake_anthropic.set_mode("answer", latency=0.5)  # the first call is still running when all ask
    panel = Panel(live, token)
    start = threading.Barrier(20)

    def ask(_):
        start.wait()
        return panel.get(escalation_id, "client_update")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
    assert len({a.json()["text"] for a in answers}) == 1
    assert len(tone_requests(fake_anthropic)) == 1
    assert [r.purpose for r in ai_calls(app, escalation_id)] == ["summary", "tone:client_update"]
    assert len(variant_rows(app, escalation_id)) == 1


def test_email_draft_has_a_subject_and_refresh_makes_exactly_one_new_call(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 105390, member="bwalsh")
    panel = Panel(live, token)

    # The fake answers without a "Subject:" line: the subject comes from the ticket.
    plain = panel.get(escalation_id, "email_draft")
    assert plain.status_code == 200, plain.text
    assert plain.json()["subject"].startswith("Update on ticket #105390")

    fake_anthropic.set_mode(
        "answer", text="Subject: VPN sign-in is being fixed\n\nHello Paul,\n\nWe are on it."
    )
    refreshed = panel.get(escalation_id, "email_draft", refresh="true")
    assert refreshed.status_code == 200, refreshed.text
    draft = refreshed.json()
    assert draft["subject"] == "VPN sign-in is being fixed"
    assert draft["text"] == "Hello Paul,\n\nWe are on it."
    assert draft["source"] == "transformed"
    assert panel.get(escalation_id, "email_draft").json() == draft
    assert len(tone_requests(fake_anthropic)) == 2
    purposes = [r.purpose for r in ai_calls(app, escalation_id)]
    assert purposes == ["summary", "tone:email_draft", "tone:email_draft"]


def test_unknown_audience_and_other_members_escalations_are_404(
    baton, sandbox, fake_anthropic, admin_headers
):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 106102, member="aokafor")
    panel = Panel(live, token)
    unknown = panel.get(escalation_id, "press_release")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_audience"
    assert panel.get(escalation_id + 999, "ticket_notes").status_code == 404
    stranger = add_member(live, admin_headers, "someone", "technician")
    assert Panel(live, stranger["token"]).get(escalation_id, "ticket_notes").status_code == 404
    assert len(tone_requests(fake_anthropic)) == 0


def test_a_failing_model_answers_503_keeps_nothing_and_a_later_request_succeeds(
    baton, sandbox, fake_anthropic
):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 104512)
    panel = Panel(live, token)
    fake_anthropic.set_mode("500")
    failed = panel.get(escalation_id, "client_update")
    assert failed.status_code == 503, failed.text
    error = failed.json()["error"]
    assert error["code"] == "ai_unavailable" and "client update" in error["message"]
    assert variant_rows(app, escalation_id) == []
    [row] = [r for r in ai_calls(app, escalation_id) if r.purpose == "tone:client_update"]
    assert row.outcome == "http_500"

    fake_anthropic.set_mode("answer")
    later = panel.get(escalation_id, "client_update")
    assert later.status_code == 200 and later.json()["text"].startswith("Rewritten:")
    outcomes = [r.outcome for r in ai_calls(app, escalation_id) if r.purpose.startswith("tone:")]
    assert outcomes == ["http_500", "ok"]


def test_a_regenerated_handoff_gets_a_new_rewrite_once(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 106102, member="aokafor")
    panel = Panel(live, token)
    first = panel.get(escalation_id, "client_update").json()
    regenerated = requests.post(
        f"{live.url}/api/v1/escalations/{escalation_id}/regenerate", headers=panel.headers
    )
    assert regenerated.status_code == 202, regenerated.text
    run_worker(app)
    fake_anthropic.set_mode("answer", text="A new update for the client.")
    second = panel.get(escalation_id, "client_update").json()
    assert second["text"] == "A new update for the client." != first["text"]
    assert second["created_at"] > first["created_at"]
    assert panel.get(escalation_id, "client_update").json() == second
    purposes = [r.purpose for r in ai_calls(app, escalation_id)]
    assert purposes == ["summary", "tone:client_update", "summary", "tone:client_update"]


def test_a_fallback_handoff_is_not_rewritten_for_the_client(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    fake_anthropic.set_mode("bad_schema")  # the summary breaks its schema: a fallback handoff
    store.escalate(104512, member="kpatel")
    wait_for(lambda: accepted(store), what="callback")
    [escalation_id] = escalation_ids(app)
    run_worker(app)
    fake_anthropic.set_mode("answer")
    panel = Panel(live, token)
    notes = panel.get(escalation_id, "ticket_notes")
    assert notes.status_code == 200 and "without AI" in notes.json()["text"]
    refused = panel.get(escalation_id, "client_update")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "handoff_fallback"
    assert "regenerate" in refused.json()["error"]["message"]
    assert tone_requests(fake_anthropic) == [] and variant_rows(app, escalation_id) == []


# --- legacy rows ---------------------------------------------------------------------------


def test_a_legacy_row_generates_its_handoff_once_then_rewrites_it(baton, fake_anthropic):
    app, live, token = baton
    escalation_id = legacy_escalation(app, 105033)
    panel = Panel(live, token)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: panel.get(escalation_id, "client_update"), range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert {a.json()["source"] for a in answers} == {"generated"}
    assert len(summary_requests(fake_anthropic)) == 1
    assert len(tone_requests(fake_anthropic)) == 1
    assert [r.purpose for r in ai_calls(app, escalation_id)] == ["summary", "tone:client_update"]

    notes = panel.get(escalation_id, "ticket_notes").json()
    assert notes["source"] == "saved" and "Likely cause" in notes["text"]
    assert len(fake_anthropic.message_requests()) == 2


# --- publishing ----------------------------------------------------------------------------


def test_publish_writes_one_client_visible_note_only_when_asked(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 105390, member="bwalsh")
    panel = Panel(live, token)
    text = panel.get(escalation_id, "client_update").json()["text"]
    before = store.notes(105390)
    assert not [n for n in before if text in n.text], "a rewrite is never posted by itself"

    published = panel.publish(escalation_id, "client_update")
    assert published.status_code == 201, published.text
    answer = published.json()
    assert answer["visibility"] == "client" and answer["published_note_id"]
    new = [n for n in store.notes(105390) if n not in before]
    assert len(new) == 1
    assert new[0].detail and not new[0].internal, "the client-visible discussion flag"
    assert text in new[0].text and str(new[0].id) == answer["published_note_id"]

    again = panel.publish(escalation_id, "client_update")
    assert again.status_code == 409
    assert again.json()["published_note_id"] == answer["published_note_id"]
    assert len(store.notes(105390)) == len(before) + 1
    assert len(tone_requests(fake_anthropic)) == 1

    with app.app_context():
        [action] = session.scalars(select(Action).where(Action.escalation_id == escalation_id))
        assert action.kind == "variant_published" and "client_update" in action.detail
        row = session.scalar(
            select(HandoffVariant).where(HandoffVariant.audience == "client_update")
        )
        assert row.published_note_id == answer["published_note_id"] and row.published_at


def test_ticket_notes_publish_is_409_when_the_pipeline_wrote_it(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 106102, member="aokafor")
    panel = Panel(live, token)
    before = len(store.notes(106102))
    conflict = panel.publish(escalation_id, "ticket_notes")
    assert conflict.status_code == 409, conflict.text
    with app.app_context():
        assert conflict.json()["note_id"] == session.get(Escalation, escalation_id).note_id
    email = panel.publish(escalation_id, "email_draft")
    assert email.status_code == 400 and email.json()["error"]["code"] == "not_publishable"
    assert len(store.notes(106102)) == before
    assert len(tone_requests(fake_anthropic)) == 0


def test_ticket_notes_publish_writes_the_internal_note_once(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = legacy_escalation(app, 104512)
    panel = Panel(live, token)
    published = panel.publish(escalation_id, "ticket_notes")
    assert published.status_code == 201, published.text
    assert published.json()["visibility"] == "internal"
    [note] = baton_notes(store, 104512)
    assert note.internal and not note.detail
    run_worker(app)  # the pipeline's own write-back finds the note instead of posting again
    assert len(baton_notes(store, 104512)) == 1
    assert panel.publish(escalation_id, "ticket_notes").status_code == 409
    assert [r.purpose for r in ai_calls(app, escalation_id)] == ["summary"]


def test_a_technician_gets_403_on_publish_and_refresh(
    baton, sandbox, fake_anthropic, admin_headers
):
    app, live, _token = baton
    store, _server = sandbox
    technician = add_member(live, admin_headers, "kpatel", "technician")
    escalation_id = ready_escalation(app, store, 104512, member="kpatel")
    mine = Panel(live, technician["token"])
    assert mine.get(escalation_id, "ticket_notes").status_code == 200  # their own escalation
    for audience in ("ticket_notes", "client_update"):
        refused = mine.publish(escalation_id, audience)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert mine.get(escalation_id, "client_update", refresh="true").status_code == 403
    assert len(tone_requests(fake_anthropic)) == 0


# --- the done-when figure ------------------------------------------------------------------


def test_three_audiences_cost_one_summary_call_and_two_tone_calls(baton, sandbox, fake_anthropic):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 105033, member="tnguyen")
    panel = Panel(live, token)
    for _ in range(3):
        for audience in ("ticket_notes", "client_update", "email_draft"):
            assert panel.get(escalation_id, audience).status_code == 200
    rows = ai_calls(app, escalation_id)
    for row in rows:
        print(
            f"ai_calls escalation={escalation_id} purpose={row.purpose} model={row.model} "
            f"in={row.input_tokens} out={row.output_tokens} outcome={row.outcome}"
        )
    assert Counter(r.purpose for r in rows) == {
        "summary": 1,
        "tone:client_update": 1,
        "tone:email_draft": 1,
    }
    assert all(r.outcome == "ok" and r.input_tokens and r.output_tokens for r in rows)


def test_the_openapi_document_lists_the_variant_endpoints(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert "/api/v1/escalations/{escalation_id}/variants/{audience}" in spec["paths"]
    assert "/api/v1/escalations/{escalation_id}/variants/{audience}/publish" in spec["paths"]


# --- the rewrite request itself (no HTTP needed) ---------------------------------------------


def test_the_tone_request_is_the_saved_handoff_in_the_tenants_language():
    from connector import tone
    from connector.models import Handoff

    handoff = Handoff(
        state="ready",
        source="ai",
        summary_prose="Outlook prompts because the device is disabled in Entra.",
        what_we_know=["Webmail works", "Password reset [redacted: password] done"],
        tried=[{"action": "Recreated the Outlook profile", "result": "still prompts"}],
        likely_cause="The device object was disabled.",
        suggested_steps=["Re-enable the device in Entra"],
        confidence="medium",
        model="claude-sonnet-5-5",
    )
    request = tone.build_request("email_draft", handoff, language="de", model=TONE_MODEL)
    assert request["thinking"] == {"type": "disabled"} and "temperature" not in request
    assert "Write in German." in request["system"] and "[redacted: ...]" in request["system"]
    content = request["messages"][0]["content"]
    assert handoff.summary_prose in content and "Re-enable the device in Entra" in content
    assert "- Recreated the Outlook profile: still prompts" in content  # what was tried, too
    assert "Subject: " in content and "claude-sonnet-5-5" not in content


def test_subject_parsing_and_cleaning():
    from connector.tone import clean, split_subject

    assert split_subject("Subject: VPN fixed\n\nHello,\nDone.") == ("VPN fixed", "Hello,\nDone.")
    assert split_subject("**Subject:** Backup update\nHi") == ("Backup update", "Hi")
    assert split_subject("Hello, no subject here") == (None, "Hello, no subject here")
    cleaned = clean("We reset the password [redacted: password] and it works .")
    assert cleaned == "We reset the password and it works."
