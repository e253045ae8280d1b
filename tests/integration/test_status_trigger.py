"""Status triggers resolved where they are set: an Autotask tenant named its statuses, its
webhook was made by hand in Autotask (never `webhooks/install`), and its first escalation is
recorded, whether the PSA answered when the connection was saved or only later."""

from __future__ import annotations

import pytest
import requests

from adapters.autotask.sandbox import zone_url as autotask_zone_url
from adapters.autotask.sandbox.render import STATUS_FIELD_ID
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
    autotask_state,
)
from adapters.sandbox import SandboxStore, serve_sandbox
from tests.integration.pipeline import accepted, baton_notes, escalation_ids, run_worker, wait_for

HOOK_SECRET = "made-by-hand-in-autotask-42"
API_HEADERS = {
    "UserName": SANDBOX_AUTOTASK_USERNAME,
    "Secret": SANDBOX_AUTOTASK_SECRET,
    "ApiIntegrationCode": SANDBOX_AUTOTASK_INTEGRATION_CODE,
}


@pytest.fixture
def baton(app_factory, live_server_factory, admin_headers):
    """Baton over HTTP and an operator's session on its admin API."""
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    operator = requests.Session()
    operator.headers.update(admin_headers)
    return app, live, operator


def set_up_tenant(
    live, operator, zone_url: str, statuses: list[str], secret=SANDBOX_AUTOTASK_SECRET
):
    """An Autotask tenant by status names, its connection saved; returns the tenant view."""
    created = operator.post(
        f"{live.url}/api/v1/admin/tenants",
        json={"slug": "atmsp", "name": "AT MSP", "vendor": "autotask",
              "escalation_statuses": statuses},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["escalation_status_ids"] is None  # no connection to read them from
    return connect(live, operator, zone_url, secret)


def connect(live, operator, zone_url: str, secret: str):
    saved = operator.put(
        f"{live.url}/api/v1/admin/tenants/atmsp/connection",
        json={"username": SANDBOX_AUTOTASK_USERNAME, "secret": secret,
              "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE, "zone_url": zone_url,
              "webhook_secret": HOOK_SECRET},
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    return saved.json()


def hand_made_webhook(server, callback_url: str) -> None:
    """What an admin does in Autotask's own screens: a ticket webhook on the Status field."""
    api = f"{server.site('autotask')}/ATServicesRest/V1.0"
    made = requests.post(
        f"{api}/TicketWebhooks",
        headers=API_HEADERS,
        json={"name": "Baton", "isActive": True, "webhookUrl": callback_url,
              "deactivationUrl": callback_url, "secretKey": HOOK_SECRET,
              "isSubscribedToUpdateEvents": True},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    field = requests.post(
        f"{api}/TicketWebhooks/{made.json()['itemId']}/Fields",
        headers=API_HEADERS,
        json={"fieldID": STATUS_FIELD_ID, "isSubscribedField": True},
    )
    assert field.status_code == 200, field.text


@pytest.fixture
def psa():
    """The sandbox PSA; `restart()` brings it back on the same port after `stop()`."""

    class PSA:
        def __init__(self) -> None:
            self.store = SandboxStore()
            self.server = serve_sandbox(self.store)

        def stop(self) -> None:
            self.server.stop()

        def restart(self) -> None:
            port = int(self.server.url.rsplit(":", 1)[1])
            self.server = serve_sandbox(self.store, port=port)

    running = PSA()
    yield running
    running.stop()


def statuses_of(live, operator) -> tuple[list[str], dict[str, str] | None]:
    tenant = operator.get(f"{live.url}/api/v1/admin/tenants/atmsp").json()
    return tenant["escalation_statuses"], tenant["escalation_status_ids"]


def test_names_resolved_when_the_connection_is_saved(baton, psa, fake_anthropic):
    app, live, operator = baton
    tenant = set_up_tenant(
        live, operator, autotask_zone_url(psa.server.site("autotask")), ["escalated"]
    )
    assert tenant["escalation_statuses"] == ["Escalated"]  # as the PSA spells it
    assert tenant["escalation_status_ids"] == {"Escalated": "13"}
    hand_made_webhook(psa.server, tenant["webhook_url"])

    psa.store.escalate(112871, member="tnguyen")
    wait_for(lambda: accepted(psa.store), what="the hand-made webhook to be accepted")
    assert len(escalation_ids(app)) == 1
    run_worker(app)
    assert len(baton_notes(psa.store, 112871)) == 1


def test_psa_down_at_save_then_one_picklist_read_on_the_first_webhook(baton, psa):
    app, live, operator = baton
    zone_url = autotask_zone_url(psa.server.site("autotask"))
    psa.stop()
    tenant = set_up_tenant(live, operator, zone_url, ["Escalated"])
    assert tenant["escalation_status_ids"] is None  # kept as names, to be resolved later
    psa.restart()
    hand_made_webhook(psa.server, tenant["webhook_url"])
    state = autotask_state(psa.store)

    before = state.requests
    psa.store.escalate(112871, member="tnguyen")
    wait_for(lambda: accepted(psa.store), what="the first webhook to be accepted")
    assert state.requests - before == 1  # the status picklist, read once
    assert statuses_of(live, operator) == (["Escalated"], {"Escalated": "13"})

    before = state.requests
    psa.store.escalate(113190, member="cdunn")
    wait_for(lambda: len(accepted(psa.store)) == 2, what="the second webhook")
    assert state.requests == before  # cached: no read for the next one
    assert len(escalation_ids(app)) == 2


def test_webhook_while_the_psa_cannot_be_read_is_answered_503_then_resolved(baton, psa):
    app, live, operator = baton
    zone_url = autotask_zone_url(psa.server.site("autotask"))
    tenant = set_up_tenant(live, operator, zone_url, ["Escalated"], secret="a-wrong-api-secret")
    assert tenant["escalation_status_ids"] is None
    hand_made_webhook(psa.server, tenant["webhook_url"])

    psa.store.escalate(112871, member="tnguyen")
    wait_for(lambda: psa.store.deliveries, what="the webhook")
    first = psa.store.deliveries[0]
    assert first.status == 503  # the PSA sends it again: nothing was decided, nothing lost
    assert escalation_ids(app) == []
    tenant = connect(live, operator, zone_url, SANDBOX_AUTOTASK_SECRET)
    assert tenant["escalation_status_ids"] == {"Escalated": "13"}
    again = requests.post(first.url, data=first.body, headers=first.headers, timeout=10)
    assert again.status_code == 202
    assert len(escalation_ids(app)) == 1


def test_an_unknown_name_is_a_422_listing_the_psa_statuses(baton, psa):
    _app, live, operator = baton
    set_up_tenant(live, operator, autotask_zone_url(psa.server.site("autotask")), ["Escalated"])
    refused = operator.patch(
        f"{live.url}/api/v1/admin/tenants/atmsp", json={"escalation_statuses": ["Escalted"]}
    )
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "'Escalted' is not a status of this PSA" in message
    assert "Escalated, In Progress, New, Resolved, Waiting on Client" in message
    assert statuses_of(live, operator) == (["Escalated"], {"Escalated": "13"})  # unchanged

    changed = operator.patch(
        f"{live.url}/api/v1/admin/tenants/atmsp",
        json={"escalation_statuses": ["waiting on client", "13"], "name": "AT MSP Ltd"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "AT MSP Ltd"
    assert statuses_of(live, operator) == (
        ["Waiting on Client", "Escalated"],
        {"Waiting on Client": "7", "Escalated": "13"},
    )


def test_the_cli_resolves_and_refuses_the_same_way(baton, psa):
    app, live, operator = baton
    set_up_tenant(live, operator, autotask_zone_url(psa.server.site("autotask")), ["Escalated"])
    cli = app.test_cli_runner()
    refused = cli.invoke(args=["tenants", "update", "atmsp", "--status", "Bogus"])
    assert refused.exit_code != 0
    assert "'Bogus' is not a status of this PSA (it has: Escalated," in refused.output
    updated = cli.invoke(args=["tenants", "update", "atmsp", "--status", "in progress"])
    assert updated.exit_code == 0, updated.output
    assert "trigger 'In Progress' = id '8'" in updated.output
    assert statuses_of(live, operator) == (["In Progress"], {"In Progress": "8"})


def test_the_console_audit_shows_the_trigger_beside_the_status_received(baton, psa):
    _app, live, operator = baton
    tenant = set_up_tenant(
        live, operator, autotask_zone_url(psa.server.site("autotask")), ["Escalated"]
    )
    hand_made_webhook(psa.server, tenant["webhook_url"])
    admin = operator.post(
        f"{live.url}/api/v1/admin/tenants/atmsp/members",
        json={"psa_member_id": "admin", "name": "Ada Admin", "email": "ada@example.com",
              "role": "admin"},
    )  # fmt: skip
    psa.store.set_status(112871, "Waiting on Client", actor="tnguyen")
    wait_for(lambda: psa.store.deliveries, what="the webhook")
    deliveries = requests.get(
        f"{live.url}/api/v1/tenant/deliveries",
        headers={"Authorization": f"Bearer {admin.json()['token']}"},
        timeout=10,
    ).json()
    assert [d["outcome"] for d in deliveries] == ["ignored"]
    assert deliveries[0]["reason"] == (
        "status '7' is not an escalation status (the trigger is 'Escalated' = id '13')"
    )
