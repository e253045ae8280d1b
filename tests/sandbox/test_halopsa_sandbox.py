"""The sandbox PSA speaks HaloPSA over real HTTP, and the real adapter talks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

import adapters.halopsa.client as halo
from adapters.base import (
    AdapterOptions,
    AuthenticationFailed,
    Ignored,
    RateLimited,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from adapters.halopsa.adapter import HaloAdapter
from adapters.halopsa.identity import agent_signature
from adapters.halopsa.sandbox import DIALECT
from adapters.halopsa.sandbox.render import PRIVATE_NOTE, STATUS_IDS
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TAB_SECRET,
    SANDBOX_HALO_TENANT,
    halo_state,
)
from adapters.sandbox import SandboxServer, SandboxStore, connect, sandbox_wsgi_app, serve_sandbox
from tests.sandbox.receiver import Receiver

BIG_TICKET = 99812  # 139 corpus notes and 21 time entries: more actions than one unpaged answer
OPTIONS = AdapterOptions(allow_private_urls=True, max_attempts=2)
ESCALATED = str(STATUS_IDS["Escalated"])


@pytest.fixture(autouse=True)
def clean_caches() -> None:
    for kept in (halo._AUTH_SERVERS, halo._TOKENS, halo._TOKEN_LOCKS, halo._KEPT):
        kept.clear()


@pytest.fixture
def store() -> SandboxStore:
    return SandboxStore()


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    running = serve_sandbox(store)
    yield running
    running.stop()


@pytest.fixture
def adapter(server: SandboxServer) -> HaloAdapter:
    built = connect({"dialect": "halopsa", "site": server.url}, OPTIONS)
    assert isinstance(built, HaloAdapter)
    return built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def with_password(server: SandboxServer, password: str) -> HaloAdapter:
    built = connect({"dialect": "halopsa", "site": server.url, "webhook_secret": password}, OPTIONS)
    assert isinstance(built, HaloAdapter)
    return built


def delivery(received: tuple[str, dict[str, str], bytes]) -> WebhookRequest:
    _, headers, body = received
    return WebhookRequest(body=body, headers=headers, query={})


def token(server: SandboxServer, **form: str) -> requests.Response:
    fields = {"grant_type": "client_credentials", "client_id": SANDBOX_HALO_CLIENT_ID,
              "client_secret": SANDBOX_HALO_CLIENT_SECRET, "scope": "all", **form}  # fmt: skip
    url = server.site("halopsa") + "/auth/token"
    return requests.post(url, params={"tenant": SANDBOX_HALO_TENANT}, data=fields, timeout=10)


# --- the authorisation server ----------------------------------------------------------------


def test_authinfo_names_the_auth_server_and_the_tenant(server: SandboxServer) -> None:
    info = requests.get(server.site("halopsa") + "/api/authinfo", timeout=10).json()
    assert info == {"auth_url": server.site("halopsa") + "/auth", "tenant_id": SANDBOX_HALO_TENANT}


def test_token_endpoint_speaks_oauth(server: SandboxServer) -> None:
    issued = token(server)
    assert issued.ok and issued.json()["token_type"] == "Bearer"
    assert issued.json()["expires_in"] == 3600
    assert token(server, client_secret="nope").json() == {
        "error": "invalid_client",
        "error_description": "The client credentials are invalid",
    }
    assert token(server, grant_type="password").status_code == 400
    url = server.site("halopsa") + "/auth/token"
    untenanted = requests.post(url, data={"grant_type": "client_credentials"}, timeout=10)
    assert untenanted.status_code == 500  # a wrong tenant is a 500, as seen on Halo
    api = server.site("halopsa") + "/api/Tickets/104512"
    assert requests.get(api, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert requests.get(api, headers=bearer, timeout=10).json()["id"] == 104512


def test_connection_check_in_plain_words(server: SandboxServer, adapter: HaloAdapter) -> None:
    check = adapter.test_connection()
    assert check.ok
    assert [c[0] for c in check.checks] == [
        "Halo URL",
        "Client ID and secret",
        "API agent",
        "Ticket access",
    ]
    assert check.checks[-1][2] == "the API agent can read tickets (40 visible)"
    wrong = HaloAdapter(
        {"site": server.site("halopsa"), "client_id": SANDBOX_HALO_CLIENT_ID,
         "client_secret": "wrong"}, OPTIONS,
    )  # fmt: skip
    assert wrong.test_connection().checks[-1][:2] == ("Client ID and secret", False)
    typo = HaloAdapter(
        {"site": server.site("halopsa"), "client_id": SANDBOX_HALO_CLIENT_ID,
         "client_secret": SANDBOX_HALO_CLIENT_SECRET, "tenant": "typo"}, OPTIONS,
    )  # fmt: skip
    assert typo.test_connection().checks[-1][:2] == ("Tenant", False)


def test_an_expired_token_is_replaced_once(store: SandboxStore, adapter: HaloAdapter) -> None:
    adapter.list_statuses()
    state = halo_state(store)
    with state.lock:
        state.tokens.clear()  # Halo forgot every token: the kept one answers 401
    before = state.requests
    assert adapter.fetch_context("104512").ticket.id == "104512"
    assert state.requests - before == 4  # the 401, a token, then the ticket and its actions


# --- reading ---------------------------------------------------------------------------------


def test_fetch_context_reads_every_action_but_system_ones(
    store: SandboxStore, adapter: HaloAdapter
) -> None:
    context = adapter.fetch_context(str(BIG_TICKET))
    ticket, first = store.ticket(BIG_TICKET), store.notes(BIG_TICKET)[0]
    assert context.ticket.title == ticket.summary
    assert context.ticket.description == first.text  # from details_html, through the parser
    assert context.ticket.status == "In Progress" and context.ticket.board == ticket.board
    notes = store.notes(BIG_TICKET)[1:]
    with_text = [e for e in store.time_entries(BIG_TICKET) if e.notes]
    assert len(context.notes) == len(notes) + len(with_text)  # time actions with a note too
    assert {str(n.id) for n in notes} <= {n.id for n in context.notes}
    assert not any(n.text.startswith("Status changed") for n in context.notes)
    assert len(context.time_entries) == 21
    assert sum(t.minutes for t in context.time_entries) == sum(
        e.minutes for e in store.time_entries(BIG_TICKET)
    )
    assert context.configurations[0].name == "BCU-DC01"
    assert context.configurations[0].details["ip address"] == "10.70.1.10"


def test_statuses_are_the_instances_ids(adapter: HaloAdapter) -> None:
    assert {s.name: s.id for s in adapter.list_statuses()} == {
        name: str(value) for name, value in STATUS_IDS.items()
    }


def test_members_are_agents_by_the_id_webhooks_name(
    store: SandboxStore, adapter: HaloAdapter
) -> None:
    members = {m.psa_id: m for m in adapter.list_members()}
    kpatel, former, api = (store.member(i) for i in ("kpatel", "dformer", store.api_member))
    assert kpatel and former and api
    assert members[str(kpatel.id)].name == "Kiran Patel"
    assert members[str(former.id)].active is False  # disabled agents are listed, inactive
    assert str(api.id) not in members


# --- writing ---------------------------------------------------------------------------------


def test_post_and_find_a_private_note_never_emailed(
    store: SandboxStore, adapter: HaloAdapter
) -> None:
    text = "Likely cause: <script>x()</script> & more\n\nSteps [baton-handoff #3]"
    note_id = adapter.post_note("104512", text, visibility="internal", title="Baton handoff")
    note = store.notes(104512)[-1]
    assert str(note.id) == note_id and note.internal and not note.detail
    assert note.text == "Baton handoff\n\n" + text  # escaped on the way, text again in Halo
    saved = halo_state(store).actions[note.id]
    assert (saved["outcome_id"], saved["sendemail"], saved["hiddenfromuser"]) == (
        PRIVATE_NOTE,
        False,
        True,
    )
    assert "&lt;script&gt;" in saved["note_html"]
    assert adapter.find_note("104512", "[baton-handoff #3]") == note_id
    assert adapter.find_note("104512", "[baton-handoff #4]") is None


def test_set_status_by_name_and_never_twice(store: SandboxStore, adapter: HaloAdapter) -> None:
    adapter.set_status("104512", "Escalated")
    assert store.ticket(104512).status == "Escalated"
    before = halo_state(store).requests
    adapter.set_status("104512", ESCALATED)
    assert halo_state(store).requests - before == 1  # read, found there: no save


def test_the_request_window_answers_429(store: SandboxStore, adapter: HaloAdapter) -> None:
    halo_state(store).window = (3, 300.0)
    adapter.list_statuses()  # authinfo, a token, the statuses: the window is full
    waits: list[float] = []
    adapter.sleep = waits.append
    with pytest.raises(RateLimited, match="Rate Limit Reached - 3 Requests per rolling 5 minute"):
        adapter.list_statuses()
    assert waits == [30.0]  # no Retry-After: one long pause, then back to the queue


# --- webhooks --------------------------------------------------------------------------------


def test_status_change_fires_a_basic_auth_webhook_the_adapter_accepts(
    store: SandboxStore, server: SandboxServer, adapter: HaloAdapter, receiver: Receiver
) -> None:
    callback = receiver.url + "/webhooks/halopsa/sbx"
    installed = adapter.install_webhook(callback)
    assert installed.created and installed.secret and installed.active
    tenant = with_password(server, installed.secret)
    again = tenant.install_webhook(callback)
    assert (again.created, again.id, again.secret) == (False, installed.id, None)
    assert len(halo_state(store).webhooks) == 1

    store.escalate(104512, member="kpatel", reason="Need Cloud Device Admin to re-enable it.")
    [(url, headers, body)] = receiver.wait(1)
    assert url == callback and headers["Authorization"].startswith("Basic ")
    request = delivery((url, headers, body))
    tenant.verify_webhook(request)
    kpatel = store.member("kpatel")
    assert kpatel is not None
    assert tenant.parse_webhook(request) == TicketEvent(
        ticket_id="104512",
        delivery_key=json.loads(body)["id"],
        status=ESCALATED,
        title=store.ticket(104512).summary,
        actor=str(kpatel.id),
        ticket_number="104512",
        reported_status=ESCALATED,
    )
    with pytest.raises(WebhookRejected, match="wrong webhook user or password"):
        with_password(server, "not-the-password-00").verify_webhook(request)


def test_a_replayed_delivery_reads_the_ticket_as_it_is_now(
    store: SandboxStore, server: SandboxServer, receiver: Receiver
) -> None:
    password = DIALECT.register_webhook(store, receiver.url + "/hook")
    assert password
    store.escalate(104512, member="kpatel")
    [received] = receiver.wait(1)
    store.set_status(104512, "Resolved", actor="kpatel")
    receiver.wait(2)
    event = with_password(server, password).parse_webhook(delivery(received))
    assert isinstance(event, TicketEvent) and event.status == str(STATUS_IDS["Resolved"])
    assert event.reported_status == ESCALATED  # what it said then; the API says what is now


def test_batons_own_changes_are_ignored_and_notes_do_not_call_back(
    store: SandboxStore, server: SandboxServer, adapter: HaloAdapter, receiver: Receiver
) -> None:
    installed = adapter.install_webhook(receiver.url + "/hook")
    assert installed.secret
    tenant = with_password(server, installed.secret)
    tenant.set_status("104512", "Escalated")  # Baton's own change: Halo sends it anyway
    tenant.post_note("104512", "[baton-handoff #1] handoff", visibility="internal")
    store.add_note(104512, "Tried a new profile too.", author="kpatel", internal=True)
    store.set_status(104877, "Escalated", actor="kpatel")
    first, second = receiver.wait(2)
    assert len(receiver.wait(3, timeout=0.5)) == 2  # notes are not status changes
    own = tenant.parse_webhook(delivery(first))
    assert isinstance(own, Ignored) and "Baton's own API agent" in own.reason
    other = tenant.parse_webhook(delivery(second))
    assert isinstance(other, TicketEvent) and other.ticket_id == "104877"


def test_without_webhook_permission_the_install_is_by_hand(
    store: SandboxStore, adapter: HaloAdapter
) -> None:
    halo_state(store).webhooks_api = False
    installed = adapter.install_webhook("https://baton.example.com/webhooks/halopsa/sbx")
    assert installed.id == "" and installed.secret and installed.manual is not None
    assert not halo_state(store).webhooks


# --- the custom tab ---------------------------------------------------------------------------


def test_the_custom_tabs_signed_agent_is_checked_against_halo(
    store: SandboxStore, adapter: HaloAdapter
) -> None:
    kpatel, former = store.member("kpatel"), store.member("dformer")
    assert kpatel and former
    proof = agent_signature(SANDBOX_HALO_TAB_SECRET, str(kpatel.id))
    assert adapter.verify_member(str(kpatel.id), proof) == str(kpatel.id)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        adapter.verify_member(
            str(former.id), agent_signature(SANDBOX_HALO_TAB_SECRET, str(former.id))
        )


# --- mounting ---------------------------------------------------------------------------------


def test_embedded_mount_under_a_prefix() -> None:
    store = SandboxStore()
    mounted = sandbox_wsgi_app(store, "http://127.0.0.1:5000/sandbox")
    client = Client(DispatcherMiddleware(NotFound(), {"/sandbox": mounted}))
    info = client.get("/sandbox/halopsa/api/authinfo").json
    assert info is not None
    assert info["auth_url"] == "http://127.0.0.1:5000/sandbox/halopsa/auth"
    issued: Any = client.post(
        "/sandbox/halopsa/auth/token",
        query_string={"tenant": SANDBOX_HALO_TENANT},
        data={"grant_type": "client_credentials", "client_id": SANDBOX_HALO_CLIENT_ID,
              "client_secret": SANDBOX_HALO_CLIENT_SECRET},
    ).json  # fmt: skip
    ticket = client.get(
        "/sandbox/halopsa/api/Tickets/104512",
        headers={"Authorization": f"Bearer {issued['access_token']}"},
    )
    assert ticket.json is not None and ticket.json["id"] == 104512


def test_the_dialect_names_escalated_as_its_webhooks_do() -> None:
    assert DIALECT.escalated_status == ESCALATED
