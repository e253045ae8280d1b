"""HaloPSA adapter against recorded-shape payloads, over HTTP with `responses`."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import adapters.halopsa.client as halo
from adapters import adapter_for, vendor
from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    Ignored,
    MalformedWebhook,
    NotFound,
    RateLimited,
    TicketEvent,
    Unavailable,
    WebhookRejected,
    WebhookRequest,
)
from adapters.halopsa.adapter import HaloAdapter
from adapters.halopsa.identity import agent_signature
from adapters.halopsa.text import html_text
from adapters.halopsa.webhook import basic_credentials

FIXTURES = Path(halo.__file__).parent / "fixtures"
SITE = "https://acme.halopsa.com"
API = SITE + "/api"
TOKEN_URL = SITE + "/auth/token"
PASSWORD = "whpass-0123456789abcdefghij"
TAB_SECRET = "tab-secret-for-baton"
SETTINGS = {
    "site": SITE,
    "client_id": "c9534241-dde9-4d04-9d45-32b1fbff22ed",
    "client_secret": "14c0c9af-2db1-48ab-b29c-51975df4afa2",
    "webhook_secret": PASSWORD,
    "tab_secret": TAB_SECRET,
}
CALLBACK = "https://baton.example.com/webhooks/halopsa/acme"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def delivery(body: bytes, authorization: str | None = None, **headers: str) -> WebhookRequest:
    if authorization is not None:
        headers["Authorization"] = authorization
    return WebhookRequest(
        body=body, headers={"Content-Type": "application/json", **headers}, query={}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clean_caches(monkeypatch: pytest.MonkeyPatch) -> Clock:
    for kept in (halo._AUTH_SERVERS, halo._TOKENS, halo._TOKEN_LOCKS, halo._KEPT):
        kept.clear()
    clock = Clock()
    monkeypatch.setattr("adapters.halopsa.client.time.monotonic", clock)

    # No DNS in tests: every public name resolves to a public address for the outbound guard.
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr("adapters.http.socket.getaddrinfo", resolve)
    return clock


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def adapter(waits: list[float]) -> HaloAdapter:
    return HaloAdapter(SETTINGS, AdapterOptions(), sleep=waits.append)


def signed_in(rsps: Any, issued: str = "first-token", expires_in: int = 3600) -> None:
    """authinfo names the tenant; the token endpoint answers for it."""
    rsps.get(f"{API}/authinfo", json=load("authinfo.json"))
    rsps.post(
        TOKEN_URL,
        json={**load("token.json"), "access_token": issued, "expires_in": expires_in},
        match=[matchers.query_param_matcher({"tenant": "acmemsp"})],
    )


def token_calls(rsps: Any) -> list[Any]:
    return [c for c in rsps.calls if c.request.url.startswith(TOKEN_URL)]


def api_calls(rsps: Any, path: str, method: str = "GET") -> list[Any]:
    return [
        c
        for c in rsps.calls
        if c.request.method == method and c.request.url.split("?")[0] == API + path
    ]


# --- the authorisation server and the token ------------------------------------------------------


def test_authinfo_names_the_tenant_and_the_token_is_a_client_credentials_grant(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    adapter.list_statuses()
    info, grant, listing = rsps.calls
    assert "Authorization" not in info.request.headers  # authinfo takes no credentials
    assert grant.request.url == TOKEN_URL + "?tenant=acmemsp"
    form = dict(p.split("=", 1) for p in grant.request.body.split("&"))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": SETTINGS["client_id"],
        "client_secret": SETTINGS["client_secret"],
        "scope": "all",
    }
    assert grant.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert listing.request.headers["Authorization"] == "Bearer first-token"


def test_the_token_is_kept_per_connection_and_never_lent_to_another_secret(rsps: Any) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    for _ in range(3):  # adapters are built per job: they share the kept token
        HaloAdapter(SETTINGS, AdapterOptions()).list_statuses()
    assert len(token_calls(rsps)) == 1 and len(api_calls(rsps, "/authinfo")) == 1
    stranger = HaloAdapter({**SETTINGS, "client_secret": "guessed"}, AdapterOptions())
    rsps.replace(responses.POST, TOKEN_URL, status=401, json=load("token_invalid_client.json"))
    with pytest.raises(AuthenticationFailed, match="refused the client ID and secret"):
        stranger.list_statuses()
    assert len(token_calls(rsps)) == 2  # the same site and client id, but no token without it


def test_the_token_is_refreshed_before_it_expires(rsps: Any, clean_caches: Clock) -> None:
    signed_in(rsps, expires_in=3600)
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    adapter = HaloAdapter(SETTINGS, AdapterOptions())
    adapter.list_statuses()
    clean_caches.now += 3600 - halo.TOKEN_REFRESH_MARGIN_SECONDS - 1
    adapter.list_statuses()
    assert len(token_calls(rsps)) == 1
    clean_caches.now += 2  # inside the margin: a new one before Halo would refuse the old
    rsps.replace(responses.POST, TOKEN_URL, json={**load("token.json"), "access_token": "second"})
    adapter.list_statuses()
    assert len(token_calls(rsps)) == 2
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer second"


def test_a_401_gets_one_fresh_token_and_one_retry(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", status=401, json={"Message": "Authorization has been denied"})
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    assert [s.name for s in adapter.list_statuses()][:2] == ["New", "In Progress"]
    assert len(token_calls(rsps)) == 2 and len(api_calls(rsps, "/Status")) == 2


def test_a_401_after_a_fresh_token_is_refused_not_looped(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", status=401, json={"Message": "Authorization has been denied"})
    with pytest.raises(AuthenticationFailed, match="401"):
        adapter.list_statuses()
    assert len(token_calls(rsps)) == 2 and len(api_calls(rsps, "/Status")) == 2


def test_an_authorisation_server_on_a_stranger_host_is_refused(
    rsps: Any, adapter: HaloAdapter
) -> None:
    rsps.get(f"{API}/authinfo", json={"auth_url": "https://auth.attacker.example", "tenant_id": ""})
    with pytest.raises(AdapterError, match="unexpected authorisation server"):
        adapter.list_statuses()
    assert len(rsps.calls) == 1  # the client secret went nowhere


def test_halo_hosted_authorisation_server_and_configured_tenant(rsps: Any) -> None:
    hosted = "https://auth.haloservicedesk.com"
    rsps.get(f"{API}/authinfo", json={"auth_url": hosted, "tenant_id": "discovered"})
    rsps.post(f"{hosted}/token", json=load("token.json"))
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    HaloAdapter({**SETTINGS, "tenant": "typed"}, AdapterOptions()).list_statuses()
    assert rsps.calls[1].request.url == f"{hosted}/token?tenant=typed"  # the setting wins


def test_an_instance_without_authinfo_signs_in_at_its_own_auth(rsps: Any) -> None:
    rsps.get(f"{API}/authinfo", status=404, body="Not found")
    rsps.post(TOKEN_URL, json=load("token.json"))
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    HaloAdapter({**SETTINGS, "site": "acme.halopsa.com/api/"}, AdapterOptions()).list_statuses()
    assert rsps.calls[1].request.url == TOKEN_URL  # no tenant to send


def test_missing_settings_are_named() -> None:
    with pytest.raises(AdapterError, match="client_secret"):
        HaloAdapter({**SETTINGS, "client_secret": " "}, AdapterOptions())
    assert isinstance(adapter_for("halopsa", SETTINGS, AdapterOptions()), HaloAdapter)


# --- rate limits and retries ------------------------------------------------------------------


def test_429_waits_for_retry_after(rsps: Any, adapter: HaloAdapter, waits: list) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", status=429, headers={"Retry-After": "7"})
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    adapter.list_statuses()
    assert waits == [7.0]


def test_429_without_retry_after_waits_30_seconds_once_then_goes_back_to_the_queue(
    rsps: Any, adapter: HaloAdapter, waits: list
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", status=429, json=load("error_rate_limited.json"))
    with pytest.raises(RateLimited, match="300 Requests per rolling 5 minute") as caught:
        adapter.list_statuses()
    assert waits == [30.0]  # 5 s was shown too short for Halo's window
    assert caught.value.retryable and caught.value.retry_after == 30.0
    assert "about 300 every 5 minutes" in str(caught.value)


def test_a_read_is_retried_after_a_server_error_but_a_note_is_not(
    rsps: Any, adapter: HaloAdapter, waits: list
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", status=503, body="<html>Service Unavailable</html>")
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    adapter.list_statuses()
    assert len(waits) == 1
    rsps.get(f"{API}/Outcome", json=load("outcomes.json"))
    rsps.post(f"{API}/Actions", status=503, body="<html>Service Unavailable</html>")
    with pytest.raises(Unavailable, match="HTML page instead of JSON"):
        adapter.post_note("4242", "handoff", visibility="internal")
    assert len(api_calls(rsps, "/Actions", "POST")) == 1  # never a second note by a blind retry


def test_error_bodies_become_one_clear_message(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Outcome", json=load("outcomes.json"))
    rsps.post(f"{API}/Actions", status=400, json=load("error_validation.json"))
    with pytest.raises(AdapterError) as caught:
        adapter.post_note("4242", "handoff", visibility="internal")
    assert str(caught.value) == (
        "halopsa answered 400 to POST /api/Actions: Please choose an outcome.; "
        "[0].outcome_id: The outcome is not valid for this ticket type."
    )
    assert caught.value.vendor_code == "HaloValidationException"


# --- statuses, agents, lists ------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["statuses.json", "statuses_wrapped.json"])
def test_statuses_plain_or_wrapped(rsps: Any, adapter: HaloAdapter, fixture: str) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", json=load(fixture))
    listed = adapter.list_statuses()
    assert ("21", "Escalated") in [(s.id, s.name) for s in listed]
    assert adapter.vendor == "halopsa" and adapter.status_by == "id"


def test_agents_become_members_by_agent_id(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(
        f"{API}/Agent",
        json={"agents": load("agents.json")},  # wrapped here; a bare array works the same
        match=[matchers.query_param_matcher({"includedisabled": "true", "includeenabled": "true"})],
    )
    members = {m.psa_id: m for m in adapter.list_members()}
    assert sorted(members) == ["5", "7", "9"]  # API-only agents are not people
    assert members["5"].name == "Kiran Patel" and members["5"].email == "kiran@acmemsp.example"
    assert members["7"].name == "Sam Senior"  # no display name: first name and surname
    assert members["9"].active is False


def test_an_unpaged_list_that_halo_paged_anyway_is_read_to_the_end(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    base = {"ticket_id": "4242", "includehtmlnote": "true"}
    rsps.get(f"{API}/Actions", json=load("actions_page1.json"),
             match=[matchers.query_param_matcher(base)])  # fmt: skip
    paged = {**base, "pageinate": "true", "page_size": "2", "page_no": "2"}
    rsps.get(f"{API}/Actions", json=load("actions_page2.json"),
             match=[matchers.query_param_matcher(paged)])  # fmt: skip
    assert adapter.find_note("4242", "[baton-handoff #7]") == "3"
    assert len(api_calls(rsps, "/Actions")) == 2  # the first page is not read twice


# --- context --------------------------------------------------------------------------------------


def test_context_reads_the_ticket_its_actions_and_its_assets(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Tickets/4242", json=load("ticket.json"),
             match=[matchers.query_param_matcher({"includedetails": "true"})])  # fmt: skip
    wanted = {"ticket_id": "4242", "excludesys": "true", "includehtmlnote": "true"}
    rsps.get(f"{API}/Actions", json=load("actions.json"),
             match=[matchers.query_param_matcher(wanted)])  # fmt: skip
    context = adapter.fetch_context("4242")
    ticket = context.ticket
    assert (ticket.id, ticket.number, ticket.status) == ("4242", "4242", "Escalated")
    assert ticket.company == "Kessler & Vance LLP" and ticket.contact == "Dana Whitfield"
    assert (ticket.priority, ticket.board) == ("P2 - High", "Service Desk")
    assert ticket.created_at == datetime(2026, 9, 24, 8, 12, tzinfo=UTC)  # Halo's times are UTC
    assert ticket.url == "https://acme.halopsa.com/ticket?id=4242"
    assert ticket.description == (
        "Hi team,\n\nOutlook keeps asking for my password & Teams is fine.\nTried: restart\n\n"
        '- cleared Credential Manager\n- new profile "Dana2"\n\nLaptop KV-LT-0231\n\n'
        "<not a tag> Thanks, Dana"
    )
    assert "alert" not in ticket.description and "color" not in ticket.description
    notes = context.notes
    assert [n.id for n in notes] == ["9001", "9002", "9003"]  # oldest first; no empty ones
    assert notes[0].text == "It happened again at 9am." and not notes[0].internal
    assert notes[0].author == "Dana Whitfield"
    assert notes[2].text == "Device shows Disabled in Entra; no rights to fix" and notes[2].internal
    assert [(t.member, t.minutes) for t in context.time_entries] == [
        ("Kiran Patel", 45.0),
        ("Kiran Patel", 15.0),
    ]
    first, printer = context.configurations
    assert (first.name, first.type) == ("KV-LT-0231", "Laptop")
    assert first.details == {
        "inventory number": "KV-0231",
        "site": "Main",
        "user": "dana",
        "operating system": "Windows 11 23H2",
        "serial number": "5CG2211XYZ",
    }
    assert (printer.name, printer.type) == ("KV-0007", "Printer")


def test_assets_come_from_the_asset_list_when_the_ticket_has_none(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    ticket = {k: v for k, v in load("ticket.json").items() if k != "assets"}
    rsps.get(f"{API}/Tickets/4242", json=ticket)
    rsps.get(f"{API}/Actions", json={"record_count": 0, "actions": []})
    rsps.get(f"{API}/Asset", json={"record_count": 1, "assets": load("ticket.json")["assets"][:1]},
             match=[matchers.query_param_matcher({"ticket_id": "4242"})])  # fmt: skip
    assert [c.name for c in adapter.fetch_context("4242").configurations] == ["KV-LT-0231"]


def test_a_ticket_id_that_is_not_a_number_is_not_found(adapter: HaloAdapter) -> None:
    with pytest.raises(NotFound):
        adapter.fetch_context("4242/../Agent")


def test_html_is_read_by_the_parser_not_a_pattern() -> None:
    assert html_text("<p>a < b and c > d</p>") == "a < b and c > d"
    assert html_text("<div><script>x()</script>kept<style>.a{}</style></div>") == "kept"
    assert html_text("x<br/>y<br>z") == "x\ny\nz"
    assert html_text("&lt;script&gt;alert(1)&lt;/script&gt;") == "<script>alert(1)</script>"
    assert html_text("<p>one</p>\n\n\n<p>two</p>") == "one\n\ntwo"


# --- write-back -----------------------------------------------------------------------------


def test_the_note_is_a_private_action_never_emailed_with_the_instance_outcome(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Outcome", json=load("outcomes.json"))
    rsps.post(f"{API}/Actions", json=load("action_created.json"))
    text = "Likely cause: <b>disabled</b> device & token\n\nSteps [baton-handoff #7]"
    assert adapter.post_note("4242", text, visibility="internal", title="Baton handoff") == "9010"
    rsps.replace(responses.POST, f"{API}/Actions", json=[load("action_created.json")])
    assert adapter.post_note("4242", "again", visibility="internal") == "9010"  # a list answer
    assert len(api_calls(rsps, "/Outcome")) == 1  # looked up once, then kept
    [action] = sent(api_calls(rsps, "/Actions", "POST")[0])
    assert action == {
        "ticket_id": 4242,
        "note_html": "<p><strong>Baton handoff</strong></p><p>Likely cause: &lt;b&gt;disabled"
        "&lt;/b&gt; device &amp; token</p><p>Steps [baton-handoff #7]</p>",
        "hiddenfromuser": True,
        "sendemail": False,
        "timetaken": 0,
        "outcome_id": 17,  # "Private Note", not the hidden old one
    }


def test_a_client_update_is_a_public_note_still_not_emailed(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Outcome", json=load("outcomes.json"))
    rsps.post(f"{API}/Actions", json=load("action_created.json"))
    adapter.post_note("4242", "We are on it.", visibility="client")
    [action] = sent(api_calls(rsps, "/Actions", "POST")[0])
    assert (action["outcome_id"], action["hiddenfromuser"], action["sendemail"]) == (
        18,
        False,
        False,
    )


def test_without_a_listed_private_outcome_the_note_names_halos_default(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Outcome", json={"outcomes": [load("outcomes.json")[0]]})
    rsps.post(f"{API}/Actions", json=load("action_created.json"))
    adapter.post_note("4242", "handoff", visibility="internal")
    [action] = sent(api_calls(rsps, "/Actions", "POST")[0])
    assert action["outcome"] == "Private Note" and "outcome_id" not in action


def test_set_status_by_name_posts_the_upsert_array_once(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    rsps.get(f"{API}/Tickets/4242", json={**load("ticket.json"), "status_id": 2})
    rsps.post(f"{API}/Tickets", json=[load("ticket.json")])
    adapter.set_status("4242", "escalated")
    assert sent(api_calls(rsps, "/Tickets", "POST")[0]) == [{"id": 4242, "status_id": 21}]
    rsps.replace(responses.GET, f"{API}/Tickets/4242", json=load("ticket.json"))
    adapter.set_status("4242", "21")  # already there: no save, so no second webhook
    assert len(api_calls(rsps, "/Tickets", "POST")) == 1
    assert len(api_calls(rsps, "/Status")) == 1


def test_an_unknown_status_is_named(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Status", json=load("statuses.json"))
    with pytest.raises(NotFound, match="no ticket status 'Tier 3'"):
        adapter.set_status("4242", "Tier 3")
    assert len(api_calls(rsps, "/Status")) == 2  # read again once: it may be brand new


# --- webhooks: the credential ----------------------------------------------------------------


def test_the_webhook_password_is_checked_in_constant_time(
    adapter: HaloAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = __import__("hmac").compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("adapters.halopsa.webhook.hmac.compare_digest", spy)
    body = raw("webhook_status_changed.json")
    adapter.verify_webhook(delivery(body, basic_credentials("baton", PASSWORD)))
    assert (PASSWORD.encode(), PASSWORD.encode()) in compared and len(compared) == 2


@pytest.mark.parametrize(
    "authorization",
    [
        basic_credentials("baton", PASSWORD[:-1] + "X"),
        basic_credentials("admin", PASSWORD),
        basic_credentials("baton", ""),
        "Basic " + base64.b64encode(PASSWORD.encode()).decode(),  # no user:password
        "Basic not-base64!",
        "Bearer " + PASSWORD[:-1],
        None,
        "",
    ],
)
def test_a_wrong_or_missing_credential_is_refused(
    adapter: HaloAdapter, authorization: str | None
) -> None:
    with pytest.raises(WebhookRejected):
        adapter.verify_webhook(delivery(raw("webhook_status_changed.json"), authorization))


def test_the_password_may_come_as_a_bearer_token_or_a_header(adapter: HaloAdapter) -> None:
    body = raw("webhook_status_changed.json")
    adapter.verify_webhook(delivery(body, f"Bearer {PASSWORD}"))
    adapter.verify_webhook(delivery(body, **{"X-Baton-Secret": PASSWORD}))
    with pytest.raises(WebhookRejected):
        adapter.verify_webhook(delivery(body, **{"X-Baton-Secret": "guess"}))


def test_no_password_yet_refuses_every_delivery() -> None:
    unset = HaloAdapter({**SETTINGS, "webhook_secret": ""}, AdapterOptions())
    with pytest.raises(WebhookRejected, match="install the webhook first"):
        unset.verify_webhook(delivery(b"{}", basic_credentials("baton", "")))


# --- webhooks: parsing with the ticket re-read -------------------------------------------


def test_the_status_comes_from_the_ticket_not_the_payload(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(f"{API}/Tickets/4242", json=load("ticket.json"))
    event = adapter.parse_webhook(delivery(raw("webhook_status_changed.json")))
    assert event == TicketEvent(
        ticket_id="4242",
        delivery_key="8e25bc7b-5c1f-4a3a-9d0e-2b6f1c7e9a01",  # the delivery's GUID: dedupe key
        status="21",  # the API says Escalated now
        title="Outlook prompts for password every 10 minutes - Dana Whitfield",
        actor="5",
        ticket_number="4242",
        reported_status="9",  # the payload said Closed: it can only stop this escalating
    )


def test_an_event_only_payload_names_the_ticket_by_object_id(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Tickets/4242", json=load("ticket.json"))
    event = adapter.parse_webhook(delivery(raw("webhook_event_only.json")))
    assert isinstance(event, TicketEvent)
    assert (event.ticket_id, event.actor, event.reported_status) == ("4242", "", "")


def test_another_objects_event_is_ignored_without_reading_a_ticket(
    rsps: Any, adapter: HaloAdapter
) -> None:
    event = adapter.parse_webhook(delivery(raw("webhook_new_client.json")))
    assert isinstance(event, Ignored) and "not a ticket event (new client added)" in event.reason
    assert event.delivery_key == "4b1d2c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
    assert len(rsps.calls) == 0  # object_id 4242 is a client here, never read as a ticket


def test_a_change_made_by_batons_own_api_agent_is_ignored(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    body = {**load("webhook_status_changed.json"), "agent_id": 38}
    for n in range(2):
        body["id"] = f"delivery-{n}"
        event = adapter.parse_webhook(delivery(json.dumps(body).encode()))
        assert isinstance(event, Ignored) and "Baton's own API agent" in event.reason
    assert len(api_calls(rsps, "/Agent/me")) == 1 and not api_calls(rsps, "/Tickets/4242")


def test_a_ticket_the_api_cannot_see_is_ignored(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(f"{API}/Tickets/4242", status=404, json={"Message": "Ticket not found"})
    event = adapter.parse_webhook(delivery(raw("webhook_status_changed.json")))
    assert isinstance(event, Ignored) and "not visible through the API" in event.reason


def test_a_webhook_waits_out_neither_a_rate_limit_nor_a_server_error(
    rsps: Any, adapter: HaloAdapter, waits: list
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(f"{API}/Tickets/4242", status=429, json=load("error_rate_limited.json"))
    with pytest.raises(RateLimited):
        adapter.parse_webhook(delivery(raw("webhook_status_changed.json")))
    rsps.replace(responses.GET, f"{API}/Tickets/4242", status=502, body="Bad gateway")
    with pytest.raises(Unavailable):
        adapter.parse_webhook(delivery(raw("webhook_status_changed.json")))
    assert waits == []  # answered at once (503): Halo delivers again, nothing was recorded
    assert len(api_calls(rsps, "/Tickets/4242")) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "turn Batching off"),
        (json.dumps([load("webhook_event_only.json")]).encode(), "turn Batching off"),
        (b'"text"', "not a JSON object"),
        (json.dumps({"event": "ticket status changed", "object_id": 4242}).encode(), "no id"),
    ],
)
def test_malformed_deliveries_are_named(adapter: HaloAdapter, body: bytes, problem: str) -> None:
    with pytest.raises(MalformedWebhook, match=problem):
        adapter.parse_webhook(delivery(body))


# --- install ---------------------------------------------------------------------------------


def test_install_creates_the_webhook_with_a_new_basic_password(rsps: Any) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Webhook", json=[])
    rsps.post(f"{API}/Webhook", json=[{"id": "new-guid", "url": CALLBACK, "active": True}])
    fresh = HaloAdapter({**SETTINGS, "webhook_secret": ""}, AdapterOptions())
    installed = fresh.install_webhook(CALLBACK)
    [webhook] = sent(api_calls(rsps, "/Webhook", "POST")[0])
    assert installed.secret and webhook["basic_password"] == installed.secret
    assert len(installed.secret) == 40
    assert (webhook["url"], webhook["basic_username"], webhook["active"]) == (
        CALLBACK,
        "baton",
        True,
    )
    assert "id" not in webhook and installed.created and installed.id == "new-guid"
    assert installed.manual is not None  # the event is ticked by hand: its number is unknown
    pasted = dict(v for step in installed.manual.steps for v in step.values)
    assert pasted["Event"] == "Ticket Status Changed" and "Password" not in pasted


def test_install_repairs_the_existing_webhook_and_keeps_the_password(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Webhook", json=load("webhooks.json"))
    existing = load("webhooks.json")[0]
    rsps.post(f"{API}/Webhook", json=[{**existing, "active": True}])
    installed = adapter.install_webhook(CALLBACK)
    [webhook] = sent(api_calls(rsps, "/Webhook", "POST")[0])
    assert webhook["id"] == existing["id"] and webhook["active"] is True
    assert webhook["basic_password"] == PASSWORD  # Baton's stored one, set again
    assert installed.secret is None and not installed.created and installed.active


def test_without_webhook_permission_the_admin_gets_every_value_to_paste(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Webhook", status=403, json={"Message": "You do not have permission"})
    installed = adapter.install_webhook(CALLBACK)
    assert installed.id == "" and not installed.active and installed.secret
    assert installed.secret != PASSWORD  # the stored one cannot be shown again: a new one
    assert installed.manual is not None
    pasted = dict(v for step in installed.manual.steps for v in step.values)
    assert pasted == {
        "Name": "Baton escalations",
        "Payload URL": CALLBACK,
        "Method": "POST",
        "Authentication": "Basic Authentication",
        "Username": "baton",
        "Password": installed.secret,
        "Payload type": "Small object with key fields only",
        "Event": "Ticket Status Changed",
    }
    later = vendor("halopsa").webhook_setup
    assert later is not None
    assert installed.secret not in repr(later(CALLBACK))  # shown once, not again


# --- connection test ------------------------------------------------------------------------


def test_connection_test_passes_check_by_check(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(f"{API}/Tickets", json=load("tickets_count.json"),
             match=[matchers.query_param_matcher({"count": "1"})])  # fmt: skip
    result = adapter.test_connection()
    assert result.ok
    assert [(what, ok) for what, ok, _ in result.checks] == [
        ("Halo URL", True),
        ("Client ID and secret", True),
        ("API agent", True),
        ("Ticket access", True),
    ]
    assert "tenant acmemsp" in result.checks[0][2]
    assert result.checks[2][2] == "Baton acts in Halo as Baton API (agent 38)"
    assert result.checks[3][2] == "the API agent can read tickets (1287 visible)"


def failed(adapter: HaloAdapter) -> tuple[str, str]:
    result = adapter.test_connection()
    assert not result.ok
    what, ok, detail = result.checks[-1]
    assert not ok and all(c[1] for c in result.checks[:-1])
    return what, detail


def test_connection_test_unreachable_host(rsps: Any, adapter: HaloAdapter) -> None:
    rsps.get(f"{API}/authinfo", body=requests.ConnectionError("refused"))
    assert failed(adapter) == (
        "Halo URL",
        "cannot reach acme.halopsa.com: check Halo URL: it is the address you open Halo at, "
        "e.g. https://yourcompany.halopsa.com",
    )


def test_connection_test_wrong_client_id_or_secret(rsps: Any, adapter: HaloAdapter) -> None:
    rsps.get(f"{API}/authinfo", json=load("authinfo.json"))
    rsps.post(TOKEN_URL, status=401, json=load("token_invalid_client.json"))
    what, detail = failed(adapter)
    assert what == "Client ID and secret" and "refused the client ID and secret" in detail
    assert "changes the client ID when an application is first saved" in detail
    assert SETTINGS["client_secret"] not in detail


def test_connection_test_wrong_tenant(rsps: Any) -> None:
    rsps.get(f"{API}/authinfo", json=load("authinfo.json"))
    rsps.post(TOKEN_URL, status=500, json={"Message": "An error has occurred."})
    what, detail = failed(HaloAdapter({**SETTINGS, "tenant": "acme-typo"}, AdapterOptions()))
    assert what == "Tenant" and "could not sign in for tenant 'acme-typo'" in detail


def test_connection_test_scope(rsps: Any, adapter: HaloAdapter) -> None:
    rsps.get(f"{API}/authinfo", json=load("authinfo.json"))
    rsps.post(TOKEN_URL, status=400, json=load("token_invalid_scope.json"))
    what, detail = failed(adapter)
    assert what == "Scope" and "refused the scope 'all'" in detail


def test_connection_test_agent_permission(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", status=403, json={"Message": "Forbidden"})
    assert failed(adapter)[0] == "API agent"


def test_connection_test_ticket_access(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/me", json=load("agent_me.json"))
    rsps.get(f"{API}/Tickets", status=403, json={"Message": "Forbidden"})
    what, detail = failed(adapter)
    assert what == "Ticket access" and "read:tickets and edit:tickets" in detail


# --- the custom tab's signed agent --------------------------------------------------------------


def test_a_signed_agent_id_signs_the_agent_in(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/5", json=load("agents.json")[0])
    proof = agent_signature(TAB_SECRET, "5")
    assert adapter.verify_member("5", proof) == "5"
    urlsafe = proof.replace("+", "-").replace("/", "_").rstrip("=")
    assert adapter.verify_member("5", urlsafe) == "5"
    assert adapter.verify_member("5", proof.replace("+", " ")) == "5"  # "+" read from an address


@pytest.mark.parametrize(
    ("agent", "proof"),
    [
        ("5", agent_signature("another secret", "5")),
        ("7", agent_signature(TAB_SECRET, "5")),  # a signature is for one agent only
        ("5", "not base64 at all!"),
        ("5 ", ""),
        ("../5", agent_signature(TAB_SECRET, "../5")),
    ],
)
def test_a_wrong_signature_is_refused_without_asking_halo(
    rsps: Any, adapter: HaloAdapter, agent: str, proof: str
) -> None:
    with pytest.raises(AuthenticationFailed):
        adapter.verify_member(agent, proof)
    assert len(rsps.calls) == 0


def test_a_disabled_or_unknown_agent_is_refused(rsps: Any, adapter: HaloAdapter) -> None:
    signed_in(rsps)
    rsps.get(f"{API}/Agent/9", json=load("agents.json")[2])
    with pytest.raises(AuthenticationFailed, match="disabled"):
        adapter.verify_member("9", agent_signature(TAB_SECRET, "9"))
    rsps.get(f"{API}/Agent/99", status=404, json={"Message": "Not found"})
    with pytest.raises(AuthenticationFailed, match="no agent 99"):
        adapter.verify_member("99", agent_signature(TAB_SECRET, "99"))


def test_without_a_tab_secret_the_member_uses_a_sign_in_link() -> None:
    unset = HaloAdapter({**SETTINGS, "tab_secret": ""}, AdapterOptions())
    with pytest.raises(AuthenticationFailed, match="use a sign-in link"):
        unset.verify_member("5", agent_signature(TAB_SECRET, "5"))


def test_the_panel_is_a_custom_tab_framed_by_the_instance() -> None:
    halo_vendor = vendor("halopsa")
    assert halo_vendor.frame_origins({"site": "acme.halopsa.com/api"}) == [SITE]
    assert halo_vendor.frame_origins({}) == []
    setup = halo_vendor.panel_setup("https://baton.example.com/panel/?tenant=acme", "x")
    assert ("URL", "https://baton.example.com/panel/?tenant=acme") in setup.steps[0].values
    assert "no time" in setup.note and "only the agent id is signed" in setup.note
    assert halo_vendor.identity.method == "signed_url"
    assert (halo_vendor.identity.member_fields, halo_vendor.identity.proof_field) == (
        ("agent_id",),
        "hmac",
    )


def test_fetch_resolution_reads_the_closure_note_of_a_closed_ticket(
    rsps: Any, adapter: HaloAdapter
) -> None:
    signed_in(rsps)
    ticket = load("ticket.json")
    rsps.get(f"{API}/Tickets/4242", json=ticket)
    assert adapter.fetch_resolution("4242") is None  # not closed: nothing to read
    closed = {**ticket, "status_id": 9, "dateclosed": "2026-09-25T11:00:00"}
    rsps.replace(responses.GET, f"{API}/Tickets/4242", json=closed)
    actions = [
        {"id": 7, "who": "Sam Senior", "datetime": "2026-09-25T10:00:00", "new_status": 2,
         "note": "Looked at the sign-in logs"},
        {"id": 8, "who": "Sam Senior", "datetime": "2026-09-25T11:00:00", "new_status": 9,
         "note_html": "<p>Re-enabled KV-LT-0231 &amp; fixed the runbook</p>"},
    ]  # fmt: skip
    rsps.get(f"{API}/Actions", json={"record_count": 2, "actions": actions})
    found = adapter.fetch_resolution("4242")
    assert found is not None and found.text == "Re-enabled KV-LT-0231 & fixed the runbook"
    assert found.resolved_by == "Sam Senior"
    assert found.resolved_at == datetime(2026, 9, 25, 11, 0, tzinfo=UTC)
