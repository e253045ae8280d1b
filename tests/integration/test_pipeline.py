"""End to end for every PSA, one suite: the sandbox PSA fires the vendor's own webhook over HTTP
(signed like ConnectWise or Autotask, or with Baton's Basic password like Halo), a real RQ
worker runs the pipeline against the fake Anthropic server, and one internal note lands on the
ticket. Duplicates, forged deliveries, long tickets, write-back exactly once, faults; and the
panel, variants and notifications on the same tenant."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import select

from adapters.sandbox import SandboxServer, SandboxStore, serve_sandbox
from adapters.sandbox.store import Delivery
from connector import escalations
from connector.config import parse_smtp_url
from connector.db import session
from connector.models import Escalation
from tests.corpus import load_corpus
from tests.fakes.handoffs import READY_PAYLOAD
from tests.integration.pipeline import (
    KITS,
    VendorKit,
    accepted,
    audit_reasons,
    baton_notes,
    connect_vendor_tenant,
    escalation_ids,
    repeat_of_104512,
    run_worker,
    wait_for,
)
from tests.integration.smtp import SMTPServer

CORPUS = load_corpus()
SECRET_TICKETS = [row for row in CORPUS if row["expected"]["secrets"]]
LONGEST = max(CORPUS, key=lambda row: len(json.dumps(row)))  # 99812: 139 notes, 21 time entries


@dataclass
class Run:
    """Baton over HTTP with a tenant of one vendor on the sandbox, its webhook installed."""

    kit: VendorKit
    app: object
    url: str
    store: SandboxStore
    server: SandboxServer
    smtp: SMTPServer
    tokens: dict[str, str]

    def get(self, path: str, who: str = "sseniorr") -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)

    def post(self, path: str, who: str = "sseniorr", **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return requests.post(f"{self.url}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture(params=list(KITS))
def run(request, app_factory, live_server_factory, admin_headers, sandbox, smtp) -> Run:
    kit = KITS[request.param]
    store, server = sandbox
    app = app_factory(smtp=parse_smtp_url(smtp.url))
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    api = requests.Session()
    api.headers.update(admin_headers)
    connect_vendor_tenant(api, live.url, server, kit, "acme")
    tenant = api.get(f"{live.url}/api/v1/admin/tenants/acme").json()
    # The names stay as typed; where webhooks carry ids, they were resolved when it was set.
    assert tenant["escalation_statuses"] == ["Escalated"]
    assert tenant["escalation_status_ids"] == kit.trigger_ids
    assert tenant["webhook_url"].endswith(f"/webhooks/{kit.key}/acme")
    # installed twice: the second found the first
    assert kit.registered(store) == kit.expected_webhooks(store)
    tokens = {}
    for identifier, name, role in (("sseniorr", "Sam Senior", "engineer"),
                                   ("kpatel", "Kiran Patel", "technician")):  # fmt: skip
        member = api.post(
            f"{live.url}/api/v1/admin/tenants/acme/members",
            json={"psa_member_id": kit.member_id(store, identifier), "name": name,
                  "email": f"{identifier}@example.com", "role": role},
        )  # fmt: skip
        assert member.status_code == 201, member.text
        tokens[identifier] = member.json()["token"]
    return Run(kit, app, live.url, store, server, smtp, tokens)


def redeliver(delivery: Delivery) -> requests.Response:
    """The same bytes with the same headers: what a PSA's retry sends."""
    return requests.post(delivery.url, data=delivery.body, headers=delivery.headers, timeout=10)


# --- the pipeline ----------------------------------------------------------------------------


def test_escalated_ticket_becomes_a_ready_handoff_and_one_internal_note(run, fake_anthropic):
    ticket = 104512
    run.store.escalate(
        ticket, member="kpatel", reason="Device shows Disabled in Entra; no rights to fix"
    )
    wait_for(lambda: accepted(run.store), what=f"the {run.kit.key} webhook to be accepted")
    [escalation_id] = escalation_ids(run.app)

    run_worker(run.app)

    detail = run.get(f"/api/v1/escalations/{escalation_id}").json()
    assert detail["handoff"]["state"] == "ready"
    assert detail["handoff"]["source"] == "ai"
    assert detail["handoff"]["what_we_know"] and detail["handoff"]["suggested_steps"]
    assert detail["ticket"]["id"] == str(ticket)
    assert detail["reason"].startswith("Device shows Disabled")
    notes = baton_notes(run.store, ticket)
    assert len(notes) == 1 and notes[0].internal and not notes[0].detail
    assert "Likely cause" in notes[0].text
    assert len(fake_anthropic.message_requests()) == 1
    request = fake_anthropic.message_requests()[0].body
    assert request["output_config"]["format"]["type"] == "json_schema"
    assert "tool_choice" not in request and "temperature" not in request

    # A retried write-back finds the note instead of writing a second one.
    with run.app.app_context():
        row = session.get(Escalation, escalation_id)
        row.note_id = None
        session.commit()
        escalations.write_back(escalation_id)
        session.remove()
    assert len(baton_notes(run.store, ticket)) == 1


def test_non_ascii_ticket_text_reaches_the_model_intact(run, fake_anthropic):
    run.store.escalate(112871, member="tnguyen", reason="Sync stuck; 412,000 items in the library")
    wait_for(lambda: accepted(run.store), what="webhook")
    run_worker(run.app)
    assert len(baton_notes(run.store, 112871)) == 1
    # Zoë Ångström's ticket: non-ASCII text went through redaction and the model call intact.
    assert "Zo" in fake_anthropic.message_requests()[0].raw


def test_leaving_the_status_and_entering_it_again_is_a_new_escalation(run, fake_anthropic):
    run.store.escalate(105033, member="tnguyen")
    wait_for(lambda: len(run.store.deliveries) >= 1, what="first webhook")
    run.store.set_status(105033, "In Progress", actor="tnguyen")
    run.store.escalate(105033, member="tnguyen")
    wait_for(lambda: len(run.store.deliveries) >= 3, what="leaving and re-entering")
    assert [d.status for d in run.store.deliveries] == [202, 200, 202]
    assert len(escalation_ids(run.app)) == 2


@pytest.mark.parametrize("run", ["connectwise"], indirect=True)  # only it calls back on any save
def test_later_saves_while_escalated_are_not_new_escalations(run, fake_anthropic):
    run.store.escalate(105033, member="tnguyen")
    wait_for(lambda: len(run.store.deliveries) >= 1, what="first callback")
    run.store.add_note(105033, "Called the client back", author="tnguyen", internal=True)
    wait_for(lambda: len(run.store.deliveries) >= 2, what="second callback")
    assert [d.status for d in run.store.deliveries] == [202, 200]
    assert audit_reasons(run.app)[1] == "already escalated"


def test_duplicate_deliveries_make_one_escalation_and_one_model_call(run, fake_anthropic):
    """The escalation delivered 20 times at once, mixed with an older change delivered late."""
    run.store.set_status(105390, "Waiting on Client", actor="bwalsh")
    run.store.escalate(105390, member="bwalsh")
    wait_for(lambda: len(run.store.deliveries) == 2, what="both webhooks")
    older, escalated = run.store.deliveries
    assert (older.status, escalated.status) == (200, 202)
    copies = [escalated] * 20 + [older] * 5
    random.Random(7).shuffle(copies)
    with ThreadPoolExecutor(25) as pool:
        answers = list(pool.map(redeliver, copies))
    escalated_answers = [a for a, d in zip(answers, copies, strict=True) if d is escalated]
    assert {a.status_code for a in escalated_answers} == {202}
    assert {a.status_code for a in answers} <= {200, 202}
    assert {a.json()["escalation_id"] for a in escalated_answers} == set(escalation_ids(run.app))
    assert len(escalation_ids(run.app)) == 1
    run_worker(run.app)
    assert len(fake_anthropic.message_requests()) == 1
    assert len(baton_notes(run.store, 105390)) == 1


@pytest.mark.parametrize("row", SECRET_TICKETS, ids=lambda r: str(r["id"]))
def test_no_corpus_secret_reaches_the_model(run, fake_anthropic, row):
    run.store.escalate(row["id"], member=row["escalated_by"], reason=row["escalation_reason"])
    wait_for(lambda: accepted(run.store), what="webhook")
    run_worker(run.app)
    sent = fake_anthropic.message_requests()
    assert len(sent) == 1
    for secret in row["expected"]["secrets"]:
        assert secret not in sent[0].raw, f"{secret!r} reached the model"


def test_forged_and_unsigned_deliveries_are_refused(run, fake_anthropic):
    run.store.escalate(107255, member="kpatel")
    wait_for(lambda: accepted(run.store), what="webhook")
    genuine = run.store.deliveries[0]
    bare = {k: v for k, v in genuine.headers.items() if k not in run.kit.auth_headers}
    for body, headers in [*run.kit.forgeries(genuine), (genuine.body, bare)]:
        forged = requests.post(genuine.url, data=body, headers=headers, timeout=10)
        assert forged.status_code == 401, (headers, forged.text)
        assert forged.json()["error"]["code"] == "invalid_signature"
    # The genuine credential on a body naming another ticket: a signature refuses it; Halo's
    # unsigned body is harmless: its delivery id is the one recorded (202, the duplicate), and
    # with a new id the other ticket is read again and is not escalated (200).
    other = genuine.body.replace(b"107255", b"104512")
    renamed = other.replace(json.loads(genuine.body).get("id", "").encode() or b"\0", b"forged-1")
    for body in (other, renamed):
        answer = requests.post(genuine.url, data=body, headers=genuine.headers, timeout=10)
        assert answer.status_code in (200, 202, 401), answer.text
    assert len(escalation_ids(run.app)) == 1


def test_a_long_ticket_is_fitted_to_the_budget_and_handed_off_once(run, fake_anthropic):
    ticket = LONGEST["id"]
    run.store.escalate(ticket, member=LONGEST["escalated_by"], reason="Locked out again")
    wait_for(lambda: accepted(run.store), what="webhook")
    [escalation_id] = escalation_ids(run.app)
    run_worker(run.app)
    budget = run.app.extensions["baton"].settings.context_budget_tokens
    with run.app.app_context():
        escalation = session.get(Escalation, escalation_id)
        assert escalation.handoff.state == "ready"
        assert 0 < escalation.context_tokens <= budget
        session.remove()
    [sent] = fake_anthropic.message_requests()
    assert "Locked out again" in sent.raw and LONGEST["description"][:60] in sent.raw
    assert len(baton_notes(run.store, ticket)) == 1


# --- faults ----------------------------------------------------------------------------------


def test_hanging_model_gives_a_fallback_within_the_deadline(run, fake_anthropic):
    fake_anthropic.set_mode("hang")
    run.store.escalate(106102, member="aokafor")
    wait_for(lambda: accepted(run.store), what="webhook")
    [escalation_id] = escalation_ids(run.app)
    deadline = run.app.extensions["baton"].settings.ai_deadline_seconds
    started = time.monotonic()
    run_worker(run.app)
    elapsed = time.monotonic() - started
    assert elapsed < deadline + 2, f"took {elapsed:.1f}s with a {deadline}s deadline"
    handoff = run.get(f"/api/v1/escalations/{escalation_id}").json()["handoff"]
    assert handoff["state"] == "fallback" and handoff["source"] == "fallback"
    assert handoff["confidence"] == "low" and "timeout" in handoff["failure_reason"].lower()
    assert handoff["what_we_know"], "the fallback still shows what was extracted"
    assert len(fake_anthropic.message_requests()) == 1
    assert len(baton_notes(run.store, 106102)) == 1


def test_psa_failing_then_recovering_writes_the_note_once(run, fake_anthropic):
    run.store.escalate(108044, member="tnguyen")
    wait_for(lambda: accepted(run.store), what="webhook")
    [escalation_id] = escalation_ids(run.app)
    run.server.stop()  # the PSA goes away after the webhook: context reads and the note fail
    with run.app.app_context():
        handoff = escalations.generate(escalation_id, final_attempt=True)
        assert handoff is not None and handoff.state == "fallback"
        with pytest.raises(Exception):
            escalations.write_back(escalation_id)
        assert session.get(Escalation, escalation_id).note_id is None
        session.remove()
    revived = serve_sandbox(run.store, port=int(run.server.url.rsplit(":", 1)[1]))
    try:
        with run.app.app_context():
            escalations.write_back(escalation_id)
            escalations.write_back(escalation_id)
            session.remove()
        assert len(baton_notes(run.store, 108044)) == 1
    finally:
        revived.stop()


@pytest.mark.parametrize("run", ["halopsa"], indirect=True)  # only its deliveries are re-read
def test_a_delivery_the_psa_cannot_confirm_is_answered_503_and_accepted_later(run, fake_anthropic):
    run.server.stop()  # the API is down: the ticket cannot be read back
    run.store.escalate(104512, member="kpatel")
    deliveries = run.store.wait_for_deliveries(3, timeout=10)
    assert [d.status for d in deliveries] == [503, 503, 503]  # Halo is asked to deliver again
    assert escalation_ids(run.app) == []
    revived = serve_sandbox(run.store, port=int(run.server.url.rsplit(":", 1)[1]))
    try:
        assert redeliver(deliveries[0]).status_code == 202
        assert len(escalation_ids(run.app)) == 1
    finally:
        revived.stop()


# --- the panel, variants and notifications on the same tenant --------------------------------


def test_panel_escalation_pick_up_client_update_and_emails(run, fake_anthropic):
    escalated = run.post(
        "/api/v1/tickets/105390/escalate", who="kpatel", json={"reason": "Stuck on the VPN"}
    )
    assert escalated.status_code == 201, escalated.text
    assert run.store.ticket(105390).status == "Escalated"  # moved in the PSA by the adapter
    # Baton's own change never comes back as a second escalation (suppressed, excluded or
    # ignored as the API agent's); a junior's escalation in the PSA still does.
    run.store.escalate(104512, member="kpatel")
    wait_for(lambda: accepted(run.store), what="the PSA's own escalation")
    assert len(accepted(run.store)) == 1
    panel_id, psa_id = escalation_ids(run.app)
    assert panel_id == escalated.json()["id"]
    run_worker(run.app)

    for escalation_id, ticket in ((panel_id, 105390), (psa_id, 104512)):
        assert run.get(f"/api/v1/escalations/{escalation_id}").json()["handoff"]["state"] == "ready"
        assert len(baton_notes(run.store, ticket)) == 1
    assert run.smtp.inbox.to() == ["sseniorr@example.com"] * 2  # one email per escalation
    subjects = " ".join(str(m.message["Subject"]) for m in run.smtp.inbox.messages)
    assert all(run.store.ticket(t).summary[:30] in subjects for t in (105390, 104512))

    claimed = run.post(f"/api/v1/escalations/{panel_id}/claim")
    assert claimed.status_code == 200 and claimed.json()["state"] == "claimed"
    update = run.get(f"/api/v1/escalations/{panel_id}/variants/client_update")
    assert update.status_code == 200, update.text
    before = run.store.notes(105390)
    published = run.post(f"/api/v1/escalations/{panel_id}/variants/client_update/publish")
    assert published.status_code == 201, published.text
    [new] = [n for n in run.store.notes(105390) if n not in before]
    assert new.detail and not new.internal, "the client update is the client-visible note"
    assert update.json()["text"].split("\n")[0][:40] in new.text
    with run.app.app_context():
        kinds = session.scalars(select(Escalation.source).order_by(Escalation.id)).all()
        session.remove()
    assert kinds == ["panel", "webhook"]


# --- seen before: what fixed it last time ---------------------------------------------------

FIX = "Re-enabled KV-LT-0231 in Entra and excluded it from the svc-cleanup stale-device runbook"


def test_what_fixed_it_last_time_reaches_the_model_and_the_screen(
    run, fake_anthropic, admin_headers
):
    # Another tenant's history holds a perfect look-alike: it must never appear.
    other = requests.post(
        f"{run.url}/api/v1/admin/tenants",
        headers=admin_headers,
        json={"slug": "globex", "name": "Globex MSP", "vendor": run.kit.key,
              "escalation_statuses": ["Escalated"]},
        timeout=30,
    )  # fmt: skip
    assert other.status_code == 201, other.text
    with run.app.app_context():
        from connector.models import Tenant

        globex = session.scalar(select(Tenant).where(Tenant.slug == "globex"))
        session.add(
            Escalation(
                tenant_id=globex.id,
                ticket_id="1",
                ticket_number="GLOBEX-1",
                ticket_title="Outlook password prompts again on Dana's laptop",
                delivery_key="globex-1",
                company="Keller & Vance LLP",
                configuration_names=["KV-LT-0231"],
                search_text="Outlook password KV-LT-0231",
                resolution="OTHER TENANT'S FIX",
                resolved_by="Someone Else",
            )
        )
        session.commit()

    # The first time: escalated, handed off, then resolved in the PSA.
    run.store.escalate(104512, member="kpatel", reason="Laptop shows Disabled in Entra")
    wait_for(lambda: accepted(run.store), what="the first escalation")
    run_worker(run.app)
    delivered = len(run.store.deliveries)
    run.store.resolve(104512, FIX, member="sseniorr")
    wait_for(lambda: len(run.store.deliveries) > delivered, what="the closing webhook")
    run_worker(run.app)
    first_id = escalation_ids(run.app)[-1]
    first = run.get(f"/api/v1/escalations/{first_id}").json()
    assert first["resolution"]["text"] == FIX
    assert first["resolution"]["source"] == "psa"
    assert first["resolution"]["resolved_by"] and first["resolution"]["resolved_at"]

    # The second time: the same client's laptop fails again, in a new ticket.
    run.store.add_ticket(repeat_of_104512(104999))
    fake_anthropic.reset()
    # The model cites it, and one it was never given: only the first is kept.
    cites = [{"ticket": f"#{first['ticket']['number']}", "why": "same laptop disabled again"},
             {"ticket": "#GLOBEX-1", "why": "made up"}]  # fmt: skip
    fake_anthropic.set_mode("answer", payload={**READY_PAYLOAD, "seen_before": cites})
    run.store.escalate(104999, member="kpatel", reason="Password prompts are back on KV-LT-0231")
    wait_for(lambda: len(accepted(run.store)) == 2, what="the second escalation")
    run_worker(run.app)
    second_id = escalation_ids(run.app)[-1]
    detail = run.get(f"/api/v1/escalations/{second_id}").json()
    assert detail["handoff"]["state"] == "ready"
    [seen] = detail["related"]
    assert seen["escalation_id"] == first_id and seen["resolution"] == FIX
    assert seen["ticket_number"] == first["ticket"]["number"]
    assert seen["resolved_by"] == first["resolution"]["resolved_by"]
    assert detail["handoff"]["seen_before"] == cites[:1]
    # The one model call received it, inside the untrusted wrapper; never the other tenant's.
    [sent] = fake_anthropic.message_requests()
    text = sent.body["messages"][0]["content"]
    wrapped = text.split("<ticket_data>\n", 1)[1].split("</ticket_data>\n", 1)[0]
    assert FIX in wrapped and f"#{first['ticket']['number']}" in wrapped
    assert "OTHER TENANT" not in sent.raw and "GLOBEX" not in sent.raw
    assert "seen_before" in json.dumps(sent.body["output_config"])
    # The ticket's note lists it too.
    [note] = baton_notes(run.store, 104999)
    assert "Seen before:" in note.text and FIX in note.text
    assert "likely the same: same laptop disabled again" in note.text
