"""Tenant never-send terms and patterns through the admin API, and redaction end to end: a
tenant pattern keeps its secret from the model, and a model answer that echoes a credential is
cleaned before it is saved, shown or written to the PSA."""

from __future__ import annotations

import json
import logging

import requests
from sqlalchemy import text

from connector.db import session
from tests.integration.pipeline import accepted, baton_notes, escalation_ids, run_worker, wait_for
from tests.integration.test_admin_api import create
from tests.integration.test_variants import Panel, ready_escalation

PATTERNS = "/api/v1/admin/tenants/acme/redaction-patterns"


def add(client, headers, **body):
    return client.post(PATTERNS, json={"label": "", **body}, headers=headers)


def test_terms_are_write_only_patterns_are_shown_and_both_are_stored_encrypted(
    client, admin_headers
):
    create(client, admin_headers)
    term = add(client, admin_headers, kind="term", value="Falcon-Payroll", label="project name")
    assert term.status_code == 201
    assert term.get_json()["pattern"] is None and term.get_json()["length"] == 14
    pattern = add(client, admin_headers, kind="pattern", value=r"CTS-SVC-\d{4}-[A-Z]")
    assert pattern.status_code == 201 and pattern.get_json()["pattern"] == r"CTS-SVC-\d{4}-[A-Z]"
    listed = client.get(PATTERNS, headers=admin_headers)
    assert "Falcon-Payroll" not in listed.get_data(as_text=True)
    assert [p["kind"] for p in listed.get_json()] == ["term", "pattern"]
    stored = " ".join(session.scalars(text("SELECT value_encrypted FROM redaction_patterns")))
    assert "Falcon" not in stored and "CTS-SVC" not in stored

    tried = client.post(
        f"{PATTERNS}/try",
        json={"text": "falcon-payroll svc pw CTS-SVC-4471-Q, temp pw is Harbor#Light72"},
        headers=admin_headers,
    ).get_json()
    assert tried["redactions"] == {"never_send": 2, "password": 1}
    assert "CTS-SVC-4471" not in tried["text"] and "falcon" not in tried["text"].lower()
    assert tried["summary"] == "2 never-send terms, 1 password"

    pattern_id = pattern.get_json()["id"]
    assert client.delete(f"{PATTERNS}/{pattern_id}", headers=admin_headers).status_code == 204
    gone = client.delete(f"{PATTERNS}/{pattern_id}", headers=admin_headers)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "unknown_pattern"


def test_bad_terms_and_patterns_get_422_with_the_reason_and_change_nothing(client, admin_headers):
    create(client, admin_headers)
    for body, reason in (
        ({"kind": "pattern", "value": "(unclosed"}, "missing )"),
        ({"kind": "pattern", "value": r"(?<=x)y"}, "not a valid pattern"),  # no look-around
        ({"kind": "pattern", "value": "a*"}, "matches empty text"),
        ({"kind": "pattern", "value": "x" * 201}, "between 1 and 200"),
        ({"kind": "term", "value": "ab"}, "3 to 200 characters"),
        ({"kind": "regex", "value": "abc"}, "kind"),
        ({"kind": "term"}, "value"),
    ):
        response = add(client, admin_headers, **body)
        assert response.status_code == 422, body
        error = response.get_json()["error"]
        assert error["code"] == "invalid_request" and reason in error["message"], error
    assert client.get(PATTERNS, headers=admin_headers).get_json() == []
    for i in range(50):
        assert add(client, admin_headers, kind="term", value=f"term-{i:03d}").status_code == 201
    full = add(client, admin_headers, kind="term", value="one-too-many")
    assert full.status_code == 422 and "at most 50" in full.get_json()["error"]["message"]


def test_a_hostile_pattern_runs_in_linear_time(client, admin_headers):
    """(a+)+$ backtracks for ever in Python's re on a long run of a's; RE2 does not."""
    create(client, admin_headers)
    assert add(client, admin_headers, kind="pattern", value="(a+)+$").status_code == 201
    hostile = "a" * 19_000 + "!"
    tried = client.post(f"{PATTERNS}/try", json={"text": hostile}, headers=admin_headers)
    assert tried.status_code == 200 and tried.get_json()["text"] == hostile


def test_a_tenant_pattern_keeps_its_secret_from_the_model(
    baton, sandbox, fake_anthropic, admin_headers
):
    app, live, token = baton
    store, _server = sandbox
    added = requests.post(
        f"{live.url}{PATTERNS}",
        json={"kind": "pattern", "value": r"CTS-SVC-\d{4}-[A-Z]", "label": "service accounts"},
        headers=admin_headers,
    )
    assert added.status_code == 201
    store.add_note(104512, "svc_backup uses CTS-SVC-4471-Q since May", author="kpatel")
    store.escalate(104512, member="kpatel", reason="Backups fail after the password rotation")
    wait_for(lambda: accepted(store), what="the signed callback")
    run_worker(app)
    [sent] = fake_anthropic.message_requests()
    assert "CTS-SVC-4471-Q" not in sent.raw and "[redacted: never_send]" in sent.raw
    [escalation_id] = escalation_ids(app)
    detail = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert detail["redactions"]["counts"] == {"never_send": 1}
    assert detail["redactions"]["summary"] == (
        "1 never-send term removed before the AI saw this ticket."
    )
    assert "1 never-send term removed before the AI saw this ticket." in (
        baton_notes(store, 104512)[0].text
    )


def test_a_model_answer_that_echoes_a_credential_is_cleaned_before_it_is_saved(
    baton, sandbox, fake_anthropic, caplog
):
    app, live, token = baton
    store, _server = sandbox
    fake_anthropic.set_mode(
        "answer",
        payload={
            "tried": [{"action": "Reset the password to Stone-Gate-91", "result": "still prompts"}],
            "summary_prose": "Outlook prompts again; the temp pw is Harbor#Light72 per the junior.",
            "what_we_know": ["Signed in with dana:Brisk-Otter-58 on OWA", "Event 4625 on DC01"],
            "likely_cause": "Stale credentials in Credential Manager",
            "suggested_steps": ["Clear the vault", "Rotate the key AKIAEVALFAKEKEY23456"],
            "confidence": "medium",
            "open_questions": [],
        },
    )
    store.escalate(104512, member="kpatel", reason="Outlook keeps prompting")
    wait_for(lambda: accepted(store), what="the signed callback")
    with caplog.at_level(logging.INFO, logger="baton.steps"):
        run_worker(app)
    [escalation_id] = escalation_ids(app)
    handoff = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["handoff"]
    saved = json.dumps(handoff)
    note = baton_notes(store, 104512)[0].text
    for secret in ("Harbor#Light72", "Brisk-Otter-58", "Stone-Gate-91", "AKIAEVALFAKEKEY23456"):
        assert secret not in saved and secret not in note
    assert "[redacted: password]" in handoff["summary_prose"]
    assert "Event 4625 on DC01" in handoff["what_we_know"]  # facts stay
    logged = [
        r for r in caplog.records if getattr(r, "fields", {}).get("step") == "answer_redacted"
    ]
    assert [r.fields["redactions"] for r in logged] == [{"password": 3, "api_key": 1}]
    assert not any("Harbor#Light72" in str(vars(r)) for r in caplog.records)


def test_a_tone_variant_that_echoes_a_credential_is_cleaned_before_it_is_kept(
    baton, sandbox, fake_anthropic, caplog
):
    app, live, token = baton
    store, _server = sandbox
    escalation_id = ready_escalation(app, store, 104512)
    fake_anthropic.set_mode(
        "answer", text="We reset your password to Harbor#Light72; the PIN is now 4821."
    )
    with caplog.at_level(logging.INFO, logger="baton.steps"):
        answer = Panel(live, token).get(escalation_id, "client_update")
    assert answer.status_code == 200, answer.text
    kept = answer.json()["text"]
    assert "Harbor#Light72" not in kept and "4821" not in kept and "[redacted" not in kept
    assert kept.startswith("We reset your password")
    logged = [
        r for r in caplog.records if getattr(r, "fields", {}).get("step") == "answer_redacted"
    ]
    assert [r.fields["redactions"] for r in logged] == [{"password": 1, "pin": 1}]
    assert logged[0].fields["audience"] == "client_update"
