"""The sandbox PSA speaks ConnectWise over real HTTP and fires signed callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from adapters.base import AdapterOptions, TicketEvent, WebhookRequest
from adapters.connectwise.sandbox import DIALECT
from adapters.connectwise.sandbox.state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
    sandbox_member_hash,
)
from adapters.sandbox import (
    SandboxServer,
    SandboxStore,
    connect,
    sandbox_wsgi_app,
    serve_sandbox,
)
from adapters.sandbox import store as store_module
from tests.corpus import load_corpus
from tests.sandbox.receiver import Receiver

BIG_TICKET = 99812  # 139 corpus notes, plus the description as the first note
API = "/v2025_1/apis/3.0"
OPTIONS = AdapterOptions(allow_private_urls=True, max_attempts=2)


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)


@pytest.fixture
def store() -> SandboxStore:
    return SandboxStore()


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    running = serve_sandbox(store)
    yield running
    running.stop()


class CWClient:
    """Calls the API as the API member; paths are relative to the API root, or full URLs."""

    def __init__(self, site: str):
        self.root = site + API
        self.session = requests.Session()
        self.session.auth = (f"baton-sandbox+{SANDBOX_PUBLIC_KEY}", SANDBOX_PRIVATE_KEY)
        self.session.headers["clientId"] = SANDBOX_CLIENT_ID

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.root + path
        return self.session.request(method, url, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)


@pytest.fixture
def api(server: SandboxServer) -> Iterator[CWClient]:
    client = CWClient(server.site("connectwise"))
    yield client
    client.session.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def register(api: CWClient, receiver: Receiver, **fields: object) -> dict:
    entry = {"url": receiver.url + "/webhooks/cw?recordId=", "objectId": 1, "type": "ticket",
             "level": "owner", "description": "Baton", "isSelfSuppressedFlag": True,
             "payloadVersion": "3.0.0", **fields}  # fmt: skip
    response = api.post("/system/callbacks", json=entry)
    assert response.status_code == 201, response.text
    return response.json()


# --- discovery and authentication -------------------------------------------------------------


def test_company_info_names_the_codebase(server: SandboxServer) -> None:
    info = get(server.site("connectwise") + "/login/companyinfo/Baton-Sandbox").json()
    assert info["Codebase"] == "v2025_1/" and info["IsCloud"] is False
    unknown = get(server.site("connectwise") + "/login/companyinfo/acme")
    assert unknown.status_code == 200 and unknown.json() is None


def test_api_requires_client_id_and_keys(server: SandboxServer) -> None:
    url = server.site("connectwise") + API + "/system/info"
    good = (f"baton-sandbox+{SANDBOX_PUBLIC_KEY}", SANDBOX_PRIVATE_KEY)

    missing = get(url, auth=good)
    assert missing.status_code == 401
    assert missing.json() == {"code": "Unauthorized", "message": "clientId header is required"}

    headers = {"clientId": SANDBOX_CLIENT_ID}
    for auth in [(good[0], "wrong"), ("other+sandbox-public", SANDBOX_PRIVATE_KEY), None]:
        bad = get(url, auth=auth, headers=headers)
        assert bad.status_code == 401
        assert bad.json() == {"code": "Unauthorized", "message": "UserNotAuthenticated"}

    ok = get(url, auth=good, headers=headers)
    assert ok.json() == {"version": "v2025.1", "isCloud": False, "serverTimeZone": "UTC"}


def test_member_hash_proves_who_the_member_is(store: SandboxStore, server: SandboxServer) -> None:
    url = server.site("connectwise") + API + "/system/myMembers/info"
    headers = {"clientId": SANDBOX_CLIENT_ID}
    member_hash = sandbox_member_hash(store, "sseniorr")
    me = get(url, headers=headers, auth=("baton-sandbox+sseniorr", member_hash))
    assert me.status_code == 200
    assert me.json()["identifier"] == "sseniorr" and me.json()["lastName"] == "Senior"
    forged = get(url, headers=headers, auth=("baton-sandbox+kpatel", member_hash))
    assert forged.status_code == 401


# --- reading tickets --------------------------------------------------------------------------


def test_ticket_is_in_progress_and_description_is_the_first_note(api: CWClient) -> None:
    ticket = api.get(f"/service/tickets/{BIG_TICKET}").json()
    assert ticket["status"]["name"] == "In Progress"
    assert ticket["recordType"] == "ServiceTicket" and "initialDescription" not in ticket
    assert ticket["board"] == {"id": ticket["board"]["id"], "name": "Help Desk"}

    first = api.get(f"/service/tickets/{BIG_TICKET}/allNotes").json()[0]
    assert first["detailDescriptionFlag"] is True and first["noteType"] == "TicketNote"
    assert first["contact"]["name"] == "Karen Whitley" and "member" not in first

    missing = api.get("/service/tickets/1")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"


def test_notes_page_by_25_with_link_next(api: CWClient) -> None:
    url = f"/service/tickets/{BIG_TICKET}/notes"
    first = api.get(url)
    assert len(first.json()) == 25
    assert first.links["next"]["url"].endswith("page=2&pageSize=25")

    seen, response = [], first
    while True:
        seen += [note["id"] for note in response.json()]
        if "next" not in response.links:
            break
        response = api.get(response.links["next"]["url"])
    assert len(seen) == len(set(seen)) == 140

    everything = api.get(url, params={"pageSize": 1000})
    assert [note["id"] for note in everything.json()] == seen
    assert "Link" not in everything.headers


def test_conditions_filter_notes_and_time_entries(api: CWClient) -> None:
    query = {"conditions": 'text contains "LOCKED OUT"', "pageSize": 1000}
    notes = api.get(f"/service/tickets/{BIG_TICKET}/allNotes", params=query)
    assert notes.json() and all("locked out" in n["text"].lower() for n in notes.json())

    condition = f'chargeToType="ServiceTicket" AND chargeToId={BIG_TICKET}'
    entries = api.get("/time/entries", params={"conditions": condition, "pageSize": 100})
    assert len(entries.json()) == 21
    assert {e["chargeToId"] for e in entries.json()} == {BIG_TICKET}

    bad = api.get("/time/entries", params={"conditions": "chargeToId =="})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidObject"


def test_configurations_and_board_statuses(api: CWClient) -> None:
    refs = api.get(f"/service/tickets/{BIG_TICKET}/configurations").json()
    assert refs[0] == {"id": refs[0]["id"], "deviceIdentifier": "BCU-DC01"}
    config = api.get(f"/company/configurations/{refs[0]['id']}").json()
    assert config["type"] == {"name": "Server"} and config["ipAddress"] == "10.70.1.10"

    board = next(b for b in api.get("/service/boards").json() if b["name"] == "Help Desk")
    statuses = api.get(f"/service/boards/{board['id']}/statuses",
                       params={"conditions": 'name="Escalated"'}).json()  # fmt: skip
    assert [s["name"] for s in statuses] == ["Escalated"]


def test_members_the_real_adapter_lists_are_the_ids_callbacks_name(
    store: SandboxStore, server: SandboxServer, receiver: Receiver
) -> None:
    adapter = connect({"dialect": "connectwise", "site": server.url}, OPTIONS)
    listed = {m.psa_id: m for m in adapter.list_members()}
    assert {"kpatel", "sseniorr", "admin", "dformer"} <= set(listed)
    assert store.api_member not in listed  # an API member holds keys, it is not a person
    assert listed["dformer"].active is False and listed["kpatel"].active is True
    assert (listed["kpatel"].name, listed["kpatel"].email) == (
        "Kiran Patel",
        "kpatel@baton-sandbox.example.com",
    )
    adapter.install_webhook(receiver.url + "/webhooks/connectwise/acme")
    store.escalate(104512, member="kpatel")
    [(_url, headers, body)] = receiver.wait(1)
    event = adapter.parse_webhook(WebhookRequest(body=body, headers=headers, query={}))
    assert isinstance(event, TicketEvent) and event.actor in listed


def test_a_former_member_cannot_sign_in_with_a_member_hash(server: SandboxServer) -> None:
    store = server.store
    url = server.site("connectwise") + API + "/system/myMembers/info"
    proof = sandbox_member_hash(store, "dformer")
    auth = ("baton-sandbox+dformer", proof)
    refused = get(url, auth=auth, headers={"clientId": SANDBOX_CLIENT_ID})
    assert refused.status_code == 401


# --- writing ----------------------------------------------------------------------------------


def test_post_note_needs_a_flag(api: CWClient) -> None:
    url = f"/service/tickets/{BIG_TICKET}/notes"
    refused = api.post(url, json={"text": "handoff", "internalAnalysisFlag": False})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "InvalidField"

    created = api.post(url, json={"text": "[baton-handoff] x", "internalAnalysisFlag": True})
    assert created.status_code == 201
    note = created.json()
    assert note["internalFlag"] is True and note["member"]["identifier"] == "baton-api"
    found = api.get(url, params={"conditions": 'text contains "[baton-handoff]"'}).json()
    assert [n["id"] for n in found] == [note["id"]]


def test_patch_status_by_id_or_name(api: CWClient) -> None:
    url = "/service/tickets/104512"
    board_id = api.get(url).json()["board"]["id"]
    statuses = api.get(f"/service/boards/{board_id}/statuses").json()
    waiting = next(s for s in statuses if s["name"] == "Waiting on Client")

    by_id = api.patch(
        url, json=[{"op": "replace", "path": "status", "value": {"id": waiting["id"]}}]
    )
    assert by_id.json()["status"] == {"id": waiting["id"], "name": "Waiting on Client"}
    by_name = api.patch(url, json=[{"op": "replace", "path": "/status", "value": {"name": "New"}}])
    assert by_name.json()["status"]["name"] == "New"
    unknown = api.patch(url, json=[{"op": "replace", "path": "status", "value": {"name": "Nope"}}])
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "status"


# --- callbacks --------------------------------------------------------------------------------


def test_escalation_fires_one_signed_callback(
    store: SandboxStore, api: CWClient, receiver: Receiver
) -> None:
    entry = register(api, receiver)
    listed = api.get("/system/callbacks",
                     params={"conditions": f'url contains "{receiver.url}"'}).json()  # fmt: skip
    assert [cb["id"] for cb in listed] == [entry["id"]]

    store.escalate(104512, member="kpatel", reason="Need Cloud Device Admin to re-enable it.")

    [(url, headers, body)] = receiver.wait(1)
    assert url.endswith("/webhooks/cw?recordId=104512")
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["CompanyId"] == "baton-sandbox" and payload["MemberId"] == "kpatel"
    assert payload["Action"] == "updated" and payload["Type"] == "ticket"
    assert payload["ID"] == 104512 and payload["CallbackObjectRecId"] == entry["id"]
    assert isinstance(payload["Entity"], str)
    assert json.loads(payload["Entity"])["status"]["name"] == "Escalated"

    key_url = payload["Metadata"]["key_url"]
    assert "/v2025_1//system/callbackkey/index.rails?companyName=baton-sandbox&id=" in key_url
    signing_key = get(key_url).json()["signing_key"]
    key = hashlib.sha256(signing_key.encode()).digest()
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, headers["X-Content-Signature"])

    [delivery] = store.wait_for_deliveries(1)
    assert delivery.status == 200 and delivery.body == body
    notes = store.notes(104512)
    assert notes[-1].text.startswith("Need Cloud Device Admin") and notes[-1].author == "kpatel"


def test_self_suppressed_callback_ignores_the_api_members_own_writes(
    store: SandboxStore, api: CWClient, receiver: Receiver
) -> None:
    register(api, receiver, isSelfSuppressedFlag=True)
    note = {"text": "[baton-handoff] summary", "internalAnalysisFlag": True}
    posted = api.post("/service/tickets/104512/notes", json=note)
    assert posted.status_code == 201

    # Callbacks go out in order from one sender, so if the API note had fired, it would come first.
    store.add_note(104512, "Tried a new profile too.", author="kpatel", internal=True)
    received = receiver.wait(1)
    assert [json.loads(body)["MemberId"] for _, _, body in received] == ["kpatel"]


def test_inactive_or_other_board_callbacks_do_not_fire(
    store: SandboxStore, api: CWClient, receiver: Receiver
) -> None:
    inactive = register(api, receiver)
    deactivate = [{"op": "replace", "path": "inactiveFlag", "value": True}]
    patched = api.patch(f"/system/callbacks/{inactive['id']}", json=deactivate)
    assert patched.json()["inactiveFlag"] is True
    help_desk = store.board("Help Desk").id
    register(api, receiver, level="board", objectId=help_desk + 1)
    the_one = register(api, receiver, level="board", objectId=help_desk)

    store.escalate(104512)  # a Help Desk ticket
    # One sender delivers in registration order, so a wrong delivery would arrive first.
    [(_, _, body)] = receiver.wait(1)
    assert json.loads(body)["CallbackObjectRecId"] == the_one["id"]


def test_failed_deliveries_are_retried_three_times(store: SandboxStore, api: CWClient) -> None:
    failing = Receiver(status=500)
    try:
        register(api, failing)
        store.escalate(104512)
        attempts = store.wait_for_deliveries(3)
        assert [(d.status, d.attempt) for d in attempts] == [(500, 1), (500, 2), (500, 3)]
        assert len({d.body for d in attempts}) == 1
    finally:
        failing.stop()


def test_an_in_process_registration_calls_back_like_an_installed_one(
    store: SandboxStore, server: SandboxServer, receiver: Receiver
) -> None:
    assert DIALECT.register_webhook(store, receiver.url + "/hook") is None  # no secret to keep
    store.escalate(104512, member="kpatel")
    [(url, _headers, _body)] = receiver.wait(1)
    assert url == receiver.url + "/hook?recordId=104512"
    store.add_note(104512, "the API member's own note", author=store.api_member)
    assert len(receiver.wait(2, timeout=0.5)) == 1  # owned by the API member: suppressed


# --- seeding and mounting ------------------------------------------------------------------------


def test_seeds_every_ticket_of_the_corpus_in_the_repository() -> None:
    rows = load_corpus()
    seeded = SandboxStore()
    assert len(rows) == 40
    assert [t.id for t in seeded.tickets()] == sorted(int(r["id"]) for r in rows)
    assert {t.status for t in seeded.tickets()} == {"In Progress"}
    assert store_module.CORPUS_PATH.parent == Path(store_module.__file__).parent


def test_embedded_mount_under_a_prefix() -> None:
    store = SandboxStore()
    mounted = sandbox_wsgi_app(store, "http://127.0.0.1:5000/sandbox")
    client = Client(DispatcherMiddleware(NotFound(), {"/sandbox": mounted}))
    info = client.get("/sandbox/connectwise/login/companyinfo/baton-sandbox")
    assert info.json["CompanyID"] == "baton-sandbox"
    key = client.get(
        "/sandbox/connectwise/v2025_1//system/callbackkey/index.rails",
        query_string={
            "companyName": "baton-sandbox",
            "id": connectwise_state(store).signing_key_id,
        },
    )
    assert key.json == {"signing_key": connectwise_state(store).signing_key}
