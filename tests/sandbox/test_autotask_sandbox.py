"""The sandbox PSA speaks Autotask over real HTTP, and the real adapter talks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

import adapters.autotask.client as at
from adapters.autotask.adapter import AutotaskAdapter
from adapters.autotask.sandbox import DIALECT, zone_url
from adapters.autotask.sandbox.render import STATUS_IDS
from adapters.autotask.sandbox.serialise import autotask_json
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
    sandbox_webhooks,
)
from adapters.base import (
    AdapterOptions,
    AuthenticationFailed,
    Ignored,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from adapters.sandbox import (
    SandboxServer,
    SandboxStore,
    connect,
    sandbox_wsgi_app,
    serve_sandbox,
)
from tests.corpus import load_corpus
from tests.sandbox.receiver import Receiver

BIG_TICKET = 99812  # 139 corpus notes, plus the description the Autotask ticket carries itself
OPTIONS = AdapterOptions(allow_private_urls=True, max_attempts=2)


@pytest.fixture(autouse=True)
def clean_caches() -> None:
    at._ZONES.clear()
    at._SLOTS.clear()


@pytest.fixture
def store() -> SandboxStore:
    return SandboxStore()


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    running = serve_sandbox(store)
    yield running
    running.stop()


@pytest.fixture
def adapter(server: SandboxServer) -> AutotaskAdapter:
    built = connect({"dialect": "autotask", "site": server.url}, OPTIONS)
    assert isinstance(built, AutotaskAdapter)
    return built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def api_headers(**changes: str) -> dict[str, str]:
    headers = {
        "ApiIntegrationCode": SANDBOX_AUTOTASK_INTEGRATION_CODE,
        "UserName": SANDBOX_AUTOTASK_USERNAME,
        "Secret": SANDBOX_AUTOTASK_SECRET,
    }
    return {**headers, **changes}


def signed(server: SandboxServer, adapter: AutotaskAdapter, secret: str) -> AutotaskAdapter:
    built = connect({"dialect": "autotask", "site": server.url, "webhook_secret": secret}, OPTIONS)
    assert isinstance(built, AutotaskAdapter)
    return built


def delivery(received: tuple[str, dict[str, str], bytes], **query: str) -> WebhookRequest:
    _, headers, body = received
    return WebhookRequest(body=body, headers=headers, query=query)


# --- zone discovery and authentication -----------------------------------------------------------


def test_zone_discovery_over_http(monkeypatch: pytest.MonkeyPatch, server: SandboxServer) -> None:
    lookup = server.site("autotask") + "/atservicesrest/V1.0/zoneInformation"
    monkeypatch.setattr(at, "ZONE_DISCOVERY_URL", lookup)
    settings = {"username": SANDBOX_AUTOTASK_USERNAME, "secret": SANDBOX_AUTOTASK_SECRET,
                "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE}  # fmt: skip
    discovered = AutotaskAdapter(settings, OPTIONS)
    assert discovered.fetch_context("104512").ticket.number.startswith("T")
    assert at._ZONES[SANDBOX_AUTOTASK_USERNAME].url == zone_url(server.site("autotask"))
    unknown = AutotaskAdapter({**settings, "username": "nobody@example.com"}, OPTIONS)
    with pytest.raises(AuthenticationFailed, match="does not know the API user nobody@"):
        unknown.fetch_context("104512")


def test_autotask_status_code_quirks(server: SandboxServer) -> None:
    url = zone_url(server.site("autotask")) + "V1.0/Tickets/104512"
    wrong_secret = requests.get(url, headers=api_headers(Secret="nope"), timeout=10)
    assert wrong_secret.status_code == 401
    wrong_code = requests.get(url, headers=api_headers(ApiIntegrationCode="X"), timeout=10)
    assert wrong_code.status_code == 500
    assert wrong_code.json() == {"errors": ["IntegrationCode is invalid."]}
    unknown_user = requests.get(url, headers=api_headers(UserName="x@example.com"), timeout=10)
    assert unknown_user.status_code == 500
    missing = requests.get(url.replace("104512", "1"), headers=api_headers(), timeout=10)
    assert missing.status_code == 200 and missing.json() == {"item": None}


def test_connection_check_in_plain_words(server: SandboxServer, adapter: AutotaskAdapter) -> None:
    check = adapter.test_connection()
    assert check.ok and [c[0] for c in check.checks] == ["API user", "Credentials", "Ticket access"]
    wrong = AutotaskAdapter(
        {"username": SANDBOX_AUTOTASK_USERNAME, "secret": SANDBOX_AUTOTASK_SECRET,
         "integration_code": "WRONG", "zone_url": zone_url(server.site("autotask"))}, OPTIONS,
    )  # fmt: skip
    assert wrong.test_connection().checks[-1] == (
        "Integration code", False, "the Integration code (API tracking identifier) is wrong",
    )  # fmt: skip


# --- reading -------------------------------------------------------------------------------------


def test_fetch_context_pages_and_skips_workflow_notes(
    monkeypatch: pytest.MonkeyPatch, store: SandboxStore, adapter: AutotaskAdapter
) -> None:
    monkeypatch.setattr(at, "MAX_RECORDS", 50)  # three pages for the big ticket
    context = adapter.fetch_context(str(BIG_TICKET))
    ticket, first = store.ticket(BIG_TICKET), store.notes(BIG_TICKET)[0]
    assert context.ticket.title == ticket.summary and context.ticket.description == first.text
    assert context.ticket.status == str(STATUS_IDS["In Progress"])
    assert context.ticket.board == ticket.board and context.ticket.company == ticket.company
    assert len(context.notes) == 139
    assert [n.id for n in context.notes] == [str(n.id) for n in store.notes(BIG_TICKET)[1:]]
    assert not any(n.text.startswith("Workflow rule") for n in context.notes)
    assert len(context.time_entries) == 21
    assert context.configurations[0].name == "BCU-DC01"
    assert context.configurations[0].details["ip"] == "10.70.1.10"


def test_statuses_are_picklist_ids(adapter: AutotaskAdapter) -> None:
    statuses = {s.name: s.id for s in adapter.list_statuses()}
    assert statuses == {name: str(value) for name, value in STATUS_IDS.items()}


def test_raw_queries_page_with_next_page_url(server: SandboxServer) -> None:
    url = zone_url(server.site("autotask")) + "V1.0/TicketNotes/query"
    search = {"filter": [{"op": "eq", "field": "ticketID", "value": BIG_TICKET}], "MaxRecords": 60}
    first = requests.post(url, json=search, headers=api_headers(), timeout=10).json()
    assert len(first["items"]) == 60 and first["pageDetails"]["prevPageUrl"] is None
    second = requests.get(first["pageDetails"]["nextPageUrl"], headers=api_headers(), timeout=10)
    third = requests.post(
        second.json()["pageDetails"]["nextPageUrl"], json=search, headers=api_headers(), timeout=10
    ).json()
    assert len(second.json()["items"]) == 60 and len(third["items"]) == 20  # 139 + workflow note
    assert third["pageDetails"]["nextPageUrl"] is None
    bad = requests.post(url, json={"filter": [{"op": "eq", "field": "nope", "value": 1}]},
                        headers=api_headers(), timeout=10)  # fmt: skip
    assert bad.status_code == 500 and "nope" in bad.json()["errors"][0]


# --- writing -------------------------------------------------------------------------------------


def test_post_and_find_a_note(
    store: SandboxStore, server: SandboxServer, adapter: AutotaskAdapter
) -> None:
    marker = "[baton-handoff #41]"
    assert adapter.find_note("104512", marker) is None
    note_id = adapter.post_note("104512", f"Handoff for the senior {marker}", visibility="internal")
    assert adapter.find_note("104512", marker) == note_id
    saved = store.notes(104512)[-1]
    assert str(saved.id) == note_id and saved.internal and saved.author == store.api_member
    url = zone_url(server.site("autotask")) + f"V1.0/Tickets/104512/Notes/{note_id}"
    item = requests.get(url, headers=api_headers(), timeout=10).json()["item"]
    assert (item["title"], item["publish"], item["noteType"]) == ("Baton escalation handoff", 2, 1)
    client_note = adapter.post_note("104512", "We are on it.", visibility="client", title="Update")
    item = requests.get(url.replace(note_id, client_note), headers=api_headers(), timeout=10)
    assert item.json()["item"]["publish"] == 1
    context = adapter.fetch_context("104512")
    assert context.notes[-1].text == "Update\n\nWe are on it." and not context.notes[-1].internal


def test_set_status_by_name(store: SandboxStore, adapter: AutotaskAdapter) -> None:
    adapter.set_status("104512", "Waiting on Client")
    assert store.ticket(104512).status == "Waiting on Client"
    adapter.set_status("104512", str(STATUS_IDS["New"]))
    assert store.ticket(104512).status == "New"


def test_members_are_resources_by_the_id_webhooks_name(
    store: SandboxStore, adapter: AutotaskAdapter
) -> None:
    listed = {m.psa_id: m for m in adapter.list_members()}
    people = {m.identifier: str(m.id) for m in store.members()}
    assert {people["kpatel"], people["sseniorr"], people["dformer"]} <= set(listed)
    assert people[store.api_member] not in listed  # Baton's own API user is not a person
    assert listed[people["dformer"]].active is False
    assert listed[people["kpatel"]].name == "Kiran Patel"


# --- webhooks ------------------------------------------------------------------------------------


def test_status_change_fires_a_signed_webhook_the_adapter_accepts(
    store: SandboxStore, server: SandboxServer, adapter: AutotaskAdapter, receiver: Receiver
) -> None:
    callback = receiver.url + "/webhooks/autotask/sbx"
    installed = adapter.install_webhook(callback)
    assert installed.created and installed.secret
    tenant = signed(server, adapter, installed.secret)
    again = tenant.install_webhook(callback)
    assert (again.created, again.id, again.secret) == (False, installed.id, None)

    store.escalate(104512, member="kpatel", reason="Need Cloud Device Admin to re-enable it.")
    [(url, headers, body)] = receiver.wait(1)
    assert url == callback and headers["X-Hook-Signature"].startswith("sha1=")
    request = delivery((url, headers, body))
    tenant.verify_webhook(request)
    event = tenant.parse_webhook(request)
    kpatel = store.member("kpatel")
    assert kpatel is not None
    assert str(kpatel.id) in {m.psa_id for m in tenant.list_members()}
    assert event == TicketEvent(
        ticket_id="104512",
        delivery_key=f"{sandbox_webhooks(store)[0]['webhookGUID']}:104512:1",
        status=str(STATUS_IDS["Escalated"]),
        title=store.ticket(104512).summary,
        actor=str(kpatel.id),
        ticket_number=tenant.fetch_context("104512").ticket.number,
    )
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter_with_other_secret = signed(server, adapter, "not-the-secret-0000")
        adapter_with_other_secret.verify_webhook(request)
    [record] = store.wait_for_deliveries(1)
    assert record.status == 200 and record.body == body


def test_webhook_body_is_escaped_like_autotasks_and_signed_raw(receiver: Receiver) -> None:
    record = load_corpus()[0]
    record["summary"] = "Café & <Bistro>: 'Chef's' \"POS\" + printer \u2013 Zürich"
    store = SandboxStore([record])
    with serve_sandbox(store) as server:
        adapter = connect({"dialect": "autotask", "site": server.url}, OPTIONS)
        installed = adapter.install_webhook(receiver.url + "/hook")
        assert installed.secret
        store.escalate(record["id"], member="kpatel")
        [received] = receiver.wait(1)
    body = received[2]
    assert b"Caf\\u00E9 \\u0026 \\u003CBistro\\u003E: \\u0027Chef\\u0027s\\u0027 \\u0022POS" in body
    assert body.isascii() and b"&" not in body and b", " not in body
    assert body == autotask_json(json.loads(body)).encode()
    tenant = connect(
        {"dialect": "autotask", "site": "http://x", "webhook_secret": installed.secret}, OPTIONS
    )
    tenant.verify_webhook(delivery(received))
    event = tenant.parse_webhook(delivery(received))
    assert isinstance(event, TicketEvent) and event.title == record["summary"]
    reserialised = json.dumps(json.loads(body)).encode()
    with pytest.raises(WebhookRejected):
        tenant.verify_webhook(WebhookRequest(reserialised, received[1], {}))


def test_the_api_users_own_changes_and_notes_do_not_call_back(
    store: SandboxStore, adapter: AutotaskAdapter, receiver: Receiver
) -> None:
    adapter.install_webhook(receiver.url + "/hook")
    adapter.set_status("104512", "Escalated")  # Baton's own change: excluded resource
    adapter.post_note("104512", "[baton-handoff #1] handoff", visibility="internal")
    store.add_note(104512, "Tried a new profile too.", author="kpatel", internal=True)
    store.escalate(104512, member="kpatel", reason="still escalated")  # status unchanged
    store.set_status(104877, "Escalated", actor="kpatel")
    # One sender delivers in order, so anything fired before would arrive first.
    [(_, _, body)] = receiver.wait(1)
    assert json.loads(body)["Id"] == 104877
    assert len(receiver.wait(2, timeout=0.5)) == 1


def test_deactivation_notice_is_signed_and_only_asks_for_a_recheck(
    server: SandboxServer, adapter: AutotaskAdapter, receiver: Receiver
) -> None:
    callback = receiver.url + "/webhooks/autotask/sbx"
    installed = adapter.install_webhook(callback)
    assert installed.secret
    patch = {"id": int(installed.id), "isActive": False}
    url = zone_url(server.site("autotask")) + "V1.0/TicketWebhooks"
    assert requests.patch(url, json=patch, headers=api_headers(), timeout=10).ok
    [received] = receiver.wait(1)
    assert received[0] == callback + "?event=deactivated"
    tenant = signed(server, adapter, installed.secret)
    request = delivery(received, event="deactivated")
    tenant.verify_webhook(request)
    result = tenant.parse_webhook(request)
    assert isinstance(result, Ignored) and result.recheck_webhook

    repaired = tenant.install_webhook(callback)  # what the re-check does: turn it back on
    assert (repaired.created, repaired.active) == (False, True)
    item = requests.get(f"{url}/{installed.id}", headers=api_headers(), timeout=10).json()["item"]
    assert item["isActive"] is True and item["secretKey"] is None  # never shown again


# --- mounting ------------------------------------------------------------------------------------


def test_an_in_process_registration_fires_webhooks_signed_with_its_secret(
    store: SandboxStore, server: SandboxServer, receiver: Receiver
) -> None:
    secret = DIALECT.register_webhook(store, receiver.url + "/hook")
    assert secret
    store.set_status(104512, "Waiting on Client", actor=store.api_member)  # excluded: silent
    store.escalate(104512, member="kpatel")
    [received] = receiver.wait(1)
    tenant = signed(server, connect({"dialect": "autotask", "site": server.url}, OPTIONS), secret)
    tenant.verify_webhook(delivery(received))
    event = tenant.parse_webhook(delivery(received))
    assert isinstance(event, TicketEvent) and event.status == str(STATUS_IDS["Escalated"])
    assert len(receiver.wait(2, timeout=0.5)) == 1


def test_embedded_mount_under_a_prefix() -> None:
    store = SandboxStore()
    mounted = sandbox_wsgi_app(store, "http://127.0.0.1:5000/sandbox")
    client = Client(DispatcherMiddleware(NotFound(), {"/sandbox": mounted}))
    zone = client.get(
        "/sandbox/autotask/atservicesrest/V1.0/zoneInformation",
        query_string={"user": SANDBOX_AUTOTASK_USERNAME},
    )
    assert zone.json["url"] == "http://127.0.0.1:5000/sandbox/autotask/ATServicesRest/"
    ticket = client.get("/sandbox/autotask/ATServicesRest/V1.0/Tickets/104512",
                        headers=api_headers())  # fmt: skip
    assert ticket.json["item"]["id"] == 104512


def test_connect_builds_the_autotask_adapter_for_the_sandbox(server: SandboxServer) -> None:
    built = connect(
        {"dialect": "autotask", "site": server.url + "/autotask", "webhook_secret": "s" * 20},
        OPTIONS,
    )
    assert isinstance(built, AutotaskAdapter) and built.vendor == "autotask"
    assert built.configured_zone == zone_url(server.site("autotask"))
    assert built.username == SANDBOX_AUTOTASK_USERNAME and built.webhook_secret == "s" * 20
