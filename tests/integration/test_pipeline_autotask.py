"""The same end to end for Autotask: a signed Autotask webhook from the sandbox, the same
pipeline, one model call, one internal note; duplicate deliveries collapse to one escalation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from adapters.autotask.sandbox import zone_url
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
)
from tests.integration.pipeline import accepted, baton_notes, escalation_ids, run_worker, wait_for


@pytest.fixture
def autotask_baton(app_factory, live_server_factory, admin_headers, sandbox):
    _store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    api = requests.Session()
    api.headers.update(admin_headers)
    assert (
        api.post(
            f"{live.url}/api/v1/admin/tenants",
            json={
                "slug": "atmsp",
                "name": "Autotask MSP",
                "vendor": "autotask",
                "escalation_statuses": ["Escalated"],
            },
        ).status_code
        == 201
    )
    connected = api.put(
        f"{live.url}/api/v1/admin/tenants/atmsp/connection",
        json={
            "username": SANDBOX_AUTOTASK_USERNAME,
            "secret": SANDBOX_AUTOTASK_SECRET,
            "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE,
            "zone_url": zone_url(server.site("autotask")),
        },
    )
    assert connected.status_code == 200, connected.text
    installed = api.post(f"{live.url}/api/v1/admin/tenants/atmsp/webhooks/install")
    assert installed.status_code == 200, installed.text
    tenant = api.get(f"{live.url}/api/v1/admin/tenants/atmsp").json()
    assert tenant["connection"]["secrets"]["webhook_secret"] == "set"
    # The name resolved to Autotask's picklist id when the connection was saved.
    assert tenant["escalation_statuses"] == ["Escalated"]
    assert tenant["escalation_status_ids"] == {"Escalated": "13"}
    again = api.post(f"{live.url}/api/v1/admin/tenants/atmsp/webhooks/install")
    assert again.status_code == 200 and again.json()["created"] is False
    token = api.post(
        f"{live.url}/api/v1/admin/tenants/atmsp/members",
        json={
            "psa_member_id": "sseniorr",
            "name": "Sam Senior",
            "email": "sam@example.com",
            "role": "engineer",
        },
    ).json()["token"]
    return app, live, token


def test_autotask_escalation_becomes_a_ready_handoff_and_one_internal_note(
    autotask_baton, sandbox, fake_anthropic
):
    app, live, token = autotask_baton
    store, _server = sandbox
    store.escalate(112871, member="tnguyen", reason="Sync stuck; 412,000 items in the library")
    wait_for(lambda: accepted(store), what="the signed Autotask webhook to be accepted")
    [escalation_id] = escalation_ids(app)
    run_worker(app)
    detail = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert detail["handoff"]["state"] == "ready"
    assert detail["ticket"]["id"] == "112871"
    notes = baton_notes(store, 112871)
    assert len(notes) == 1 and notes[0].internal
    assert len(fake_anthropic.message_requests()) == 1
    # Zoë Ångström's ticket: non-ASCII text went through redaction and the model call intact.
    assert "Zo" in fake_anthropic.message_requests()[0].raw


def test_autotask_duplicate_deliveries_make_one_escalation_and_one_call(
    autotask_baton, sandbox, fake_anthropic
):
    app, _live, _token = autotask_baton
    store, _server = sandbox
    store.escalate(113190, member="cdunn")
    wait_for(lambda: accepted(store), what="webhook")
    first = accepted(store)[0]

    def redeliver(_):
        return requests.post(first.url, data=first.body, headers=first.headers, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(redeliver, range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len(escalation_ids(app)) == 1
    run_worker(app)
    assert len(fake_anthropic.message_requests()) == 1
    assert len(baton_notes(store, 113190)) == 1


def test_autotask_forged_signature_is_refused(autotask_baton, sandbox):
    _app, _live, _token = autotask_baton
    store, _server = sandbox
    store.escalate(113544, member="jreyes")
    wait_for(lambda: accepted(store), what="webhook")
    genuine = accepted(store)[0]
    headers = {**genuine.headers, "X-Hook-Signature": "sha1=AAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    forged = requests.post(genuine.url, data=genuine.body, headers=headers, timeout=10)
    assert forged.status_code == 401
