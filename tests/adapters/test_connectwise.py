"""ConnectWise adapter against recorded payloads, over HTTP with `responses`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import adapters.connectwise.client as cw
import adapters.connectwise.webhook as cw_webhook
from adapters import adapter_for, vendors
from adapters.base import (
    BATON_NOTE_MARKER,
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    ConnectionCheck,
    Ignored,
    MalformedWebhook,
    NotFound,
    PermissionDenied,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from adapters.connectwise.adapter import ConnectWiseAdapter
from adapters.connectwise.client import api_site

FIXTURES = Path(cw.__file__).parent / "fixtures"
SITE = "https://api-na.myconnectwise.net"
API = f"{SITE}/v2025_1/apis/3.0"
COMPANYINFO = f"{SITE}/login/companyinfo/acmemsp"
SANDBOX = "http://127.0.0.1:5000/sandbox/connectwise"
KEY_URL = (
    "https://api-na.myconnectwise.net/v2025_1//system/callbackkey/index.rails"
    "?companyName=acmemsp&id=89966c04-9889-46ad-8d5e-421103aca922"
)
SIGNING_KEY = "d2hhdGV2ZXIgY29ubmVjdHdpc2Ugc2VuZHM="
SETTINGS = {
    "site": SITE,
    "company_id": "acmemsp",
    "public_key": "PUBKEY0000",
    "private_key": "PRIVKEY9999",
    "client_id": "3f6f4c7e-2b1d-4c1a-9a77-0c5d2f8e91ab",
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, key: str = SIGNING_KEY) -> str:
    digest = hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook(body: bytes, signature: str | None = None, **query: str) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-content-signature"] = signature
    return WebhookRequest(body=body, headers=headers, query=query)


def with_key_url(name: str, key_url: str) -> bytes:
    payload = load(name)
    payload["Metadata"]["key_url"] = key_url
    return json.dumps(payload).encode()


@pytest.fixture(autouse=True)
def clean_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    cw._CODEBASES.clear()
    cw_webhook._SIGNING_KEYS.clear()

    # No DNS in tests: every public name resolves to a public address for the outbound guard.
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr("adapters.http.socket.getaddrinfo", resolve)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def adapter(waits: list[float]) -> ConnectWiseAdapter:
    return ConnectWiseAdapter(SETTINGS, AdapterOptions(), sleep=waits.append)


def companyinfo(rsps: Any, codebase: str = "v2025_1/") -> None:
    rsps.get(COMPANYINFO, json={**load("companyinfo.json"), "Codebase": codebase})


def paged(**query: str) -> Any:
    return matchers.query_param_matcher({"pageSize": "1000", **query})


def register_context(rsps: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/104512", json=load("ticket.json"))
    notes = f"{API}/service/tickets/104512/allNotes"
    rsps.get(notes, json=load("allnotes_page2.json"), match=[paged(page="2")])
    link = f'<{notes}?pageSize=1000&page=2>; rel="next", <{notes}?pageSize=1000&page=2>; rel="last"'
    rsps.get(notes, json=load("allnotes_page1.json"), headers={"Link": link}, match=[paged()])
    conditions = 'chargeToType="ServiceTicket" AND chargeToId=104512'
    rsps.get(
        f"{API}/time/entries",
        json=load("time_entries.json"),
        match=[paged(conditions=conditions)],
    )
    configs = f"{API}/service/tickets/104512/configurations"
    rsps.get(configs, json=load("ticket_configurations.json"), match=[paged()])
    for cid in (3107, 3112):
        rsps.get(f"{API}/company/configurations/{cid}", json=load(f"configuration_{cid}.json"))


# --- transport -----------------------------------------------------------------------------


def test_auth_headers_and_client_id(rsps: Any, adapter: ConnectWiseAdapter) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/104512", json=load("ticket.json"))
    adapter._get("/service/tickets/104512")
    info_call, ticket_call = rsps.calls
    expected = base64.b64encode(b"acmemsp+PUBKEY0000:PRIVKEY9999").decode()
    assert ticket_call.request.headers["Authorization"] == f"Basic {expected}"
    assert ticket_call.request.headers["clientId"] == SETTINGS["client_id"]
    assert ticket_call.request.headers["Accept"] == "application/json"
    assert "Authorization" not in info_call.request.headers  # companyinfo is anonymous


def test_codebase_is_discovered_once_and_cached(rsps: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/104512", json=load("ticket.json"))
    for _ in range(2):  # two adapters for the same tenant share the module cache
        ConnectWiseAdapter(SETTINGS, AdapterOptions())._get("/service/tickets/104512")
    assert [c.request.url for c in rsps.calls].count(COMPANYINFO) == 1


def test_codebase_is_reread_on_404_and_the_call_retried(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps, "v2024_1/")
    companyinfo(rsps, "v2025_1/")
    rsps.get(f"{SITE}/v2024_1/apis/3.0/service/tickets/104512", status=404)
    rsps.get(f"{API}/service/tickets/104512", json=load("ticket.json"))
    assert adapter._get("/service/tickets/104512")["id"] == 104512
    assert cw._CODEBASES[(SITE, "acmemsp")] == "v2025_1/"


def test_404_with_unchanged_codebase_is_not_found(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/9", status=404, json={"code": "NotFound", "message": "x"})
    with pytest.raises(NotFound):
        adapter.fetch_context("9")
    assert [c.request.url for c in rsps.calls].count(COMPANYINFO) == 2


def test_unknown_company_is_a_clear_error(rsps: Any, adapter: Any) -> None:
    rsps.get(COMPANYINFO, body="null", content_type="application/json")
    with pytest.raises(AuthenticationFailed, match="unknown company id"):
        adapter.fetch_context("104512")


def test_429_waits_for_retry_after_then_succeeds(rsps: Any, adapter: Any, waits: list) -> None:
    companyinfo(rsps)
    url = f"{API}/service/tickets/104512"
    rsps.get(url, status=429, headers={"Retry-After": "7"})
    rsps.get(url, json=load("ticket.json"))
    assert adapter._get("/service/tickets/104512")["id"] == 104512
    assert waits == [7.0]


def test_500_is_retried_then_succeeds(rsps: Any, adapter: Any, waits: list) -> None:
    companyinfo(rsps)
    url = f"{API}/service/tickets/104512"
    rsps.get(url, status=500, json={"code": "ConnectWiseApi", "message": "timeout"})
    rsps.get(url, json=load("ticket.json"))
    assert adapter._get("/service/tickets/104512")["id"] == 104512
    assert len(waits) == 1


def test_error_body_becomes_a_clear_message(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/callbacks", status=200, json=[])
    rsps.post(f"{API}/system/callbacks", status=400, json=load("error_invalid_object.json"))
    with pytest.raises(AdapterError) as caught:
        adapter.install_webhook("https://baton.example.com/webhooks/connectwise/acme")
    assert caught.value.status == 400 and caught.value.vendor_code == "InvalidObject"
    assert "InvalidObject: callbackEntry object is invalid" in str(caught.value)
    assert "InvalidField: Invalid URL (url)" in str(caught.value)


@pytest.mark.parametrize(
    ("site", "api"),
    [
        ("https://na.myconnectwise.net", "https://api-na.myconnectwise.net"),
        ("eu.myconnectwise.net", "https://api-eu.myconnectwise.net"),
        ("https://aus.myconnectwise.net/v4_6_release/", "https://api-aus.myconnectwise.net"),
        ("https://za.myconnectwise.net", "https://api-za.myconnectwise.net"),
        ("https://staging.connectwisedev.com", "https://api-staging.connectwisedev.com"),
        ("https://api-au.myconnectwise.net/", "https://api-au.myconnectwise.net"),
        (SANDBOX + "/", SANDBOX),
        ("https://cw.example-msp.com", "https://cw.example-msp.com"),
    ],
)
def test_ui_host_maps_to_api_host(site: str, api: str) -> None:
    assert api_site(site) == api


# --- reading -------------------------------------------------------------------------------


def test_fetch_context_reads_every_page_and_maps_records(rsps: Any) -> None:
    register_context(rsps)
    adapter = ConnectWiseAdapter(
        {**SETTINGS, "site": "https://na.myconnectwise.net"}, AdapterOptions()
    )
    context = adapter.fetch_context("104512")

    ticket = context.ticket
    assert (ticket.id, ticket.number, ticket.status, ticket.board) == (
        "104512", "104512", "Escalated", "Help Desk",
    )  # fmt: skip
    assert ticket.company == "Keller & Vance LLP" and ticket.contact == "Dana Whitfield"
    assert ticket.priority == "Priority 2 - High"
    assert ticket.description.startswith("Hi, Outlook keeps popping up")
    assert ticket.url == (
        "https://na.myconnectwise.net/v4_6_release/services/system_io/Service/"
        "fv_sr100_request.rails?service_recid=104512"
    )
    # Both pages; the description note and the time-entry note are not repeated as notes.
    assert [n.id for n in context.notes] == [
        "6116867", "6117676", "6117790", "6117959", "6118263", "6119033", "6119248", "6119881",
    ]  # fmt: skip
    by_id = {n.id: n for n in context.notes}
    assert by_id["6116867"].internal and by_id["6116867"].author == "kpatel"
    assert not by_id["6117959"].internal
    assert by_id["6118263"].author == "Dana Whitfield" and not by_id["6118263"].internal
    assert by_id["6119881"].author == "kpatel"  # from createdBy
    assert [round(t.minutes) for t in context.time_entries] == [40, 30]
    assert "Cred Manager" in context.time_entries[0].notes
    laptop, tenant = context.configurations
    assert (laptop.name, laptop.type) == ("KV-LT-0231", "Laptop")
    assert dict(laptop.details) == {
        "os": "Windows 11 Pro 23H2", "ip": "10.20.1.87", "serial": "5CG3281KQZ",
    }  # fmt: skip
    assert dict(tenant.details) == {"os": "Microsoft 365 E3"}
    lists = [c.request.url for c in rsps.calls if c.request.url.split("?")[0].endswith(
        ("/allNotes", "/time/entries", "/104512/configurations")
    )]  # fmt: skip
    assert len(lists) == 4 and all("pageSize=1000" in url for url in lists)


def test_on_prem_site_has_no_ui_link(rsps: Any) -> None:
    onprem = "https://cw.example-msp.com"
    rsps.get(f"{onprem}/login/companyinfo/acmemsp", json=load("companyinfo.json"))
    base = f"{onprem}/v2025_1/apis/3.0/service/tickets/104512"
    rsps.get(base, json=load("ticket.json"))
    for path in ("/allNotes", "/configurations"):
        rsps.get(base + path, json=[])
    rsps.get(f"{onprem}/v2025_1/apis/3.0/time/entries", json=[])
    context = ConnectWiseAdapter({**SETTINGS, "site": onprem}, AdapterOptions()).fetch_context(
        "104512"
    )
    assert context.ticket.url == ""


def test_pagination_keeps_page_size_and_conditions_when_the_link_drops_them(
    rsps: Any, adapter: Any
) -> None:
    companyinfo(rsps)
    url = f"{API}/service/tickets/104512/notes"
    cond = f'text contains "{BATON_NOTE_MARKER}"'
    rsps.get(
        url,
        json=[{"id": 1, "text": "something else"}],
        headers={"Link": f'<{url}?page=2>; rel="next"'},
        match=[matchers.query_param_matcher({"pageSize": "1000", "conditions": cond})],
    )
    rsps.get(
        url,
        json=[{"id": 991822, "text": f"{BATON_NOTE_MARKER} handoff"}],
        match=[matchers.query_param_matcher({"pageSize": "1000", "conditions": cond, "page": "2"})],
    )
    assert adapter.find_note("104512", BATON_NOTE_MARKER) == "991822"


def test_find_note_checks_the_text_itself(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/104512/notes", json=[{"id": 5, "text": "bat on handoff"}])
    assert adapter.find_note("104512", BATON_NOTE_MARKER) is None


def test_ticket_ids_must_be_numbers(rsps: Any, adapter: Any) -> None:
    for bad in ("104512/notes", "1 OR 1=1", "²"):
        with pytest.raises(NotFound):
            adapter.fetch_context(bad)
    assert len(rsps.calls) == 0


def test_pagination_never_follows_a_link_to_another_host(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(
        f"{API}/service/boards",
        json=load("boards.json"),
        headers={"Link": '<https://evil.example.com/boards?page=2>; rel="next"'},
    )
    with pytest.raises(AdapterError, match="pagination"):
        adapter.list_statuses()
    assert not any("evil" in c.request.url for c in rsps.calls)


def test_list_statuses_covers_every_active_board(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/boards", json=load("boards.json"))
    for board in (1, 4):
        rsps.get(
            f"{API}/service/boards/{board}/statuses", json=load(f"board_{board}_statuses.json")
        )
    options = adapter.list_statuses()
    assert [(o.id, o.name, o.group) for o in options] == [
        ("501", "New", "Help Desk"),
        ("512", "Escalated", "Help Desk"),
        ("515", "Waiting on Customer", "Help Desk"),
        ("601", "New", "Network"),
        ("612", "Escalated - Tier 2", "Network"),
    ]


def test_list_members_pages_through_every_member_but_api_members(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    members = f"{API}/system/members"
    wanted = "identifier,firstName,lastName,primaryEmail,officeEmail,inactiveFlag,licenseClass"
    rsps.get(
        members,
        json=load("system_members_page2.json"),
        match=[paged(page="2", fields=wanted)],
    )
    link = f'<{members}?pageSize=1000&page=2&fields={wanted}>; rel="next"'
    rsps.get(
        members,
        json=load("system_members_page1.json"),
        headers={"Link": link},
        match=[paged(fields=wanted)],
    )
    listed = adapter.list_members()
    # Callbacks name who acted by identifier (MemberId): that is the PSA id Baton keeps.
    assert [(m.psa_id, m.name, m.email, m.active) for m in listed] == [
        ("kpatel", "Kiran Patel", "kpatel@acmemsp.example.com", True),
        ("sseniorr", "Sam Senior", "ssenior@acmemsp.example.com", True),
        ("dformer", "Dana Former", "dformer@acmemsp.example.com", False),
    ]  # the API member HandoffBot (licenseClass "A") is not a person to add
    assert len(rsps.calls) == 3


def test_list_members_needs_the_members_permission(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/members", status=403, json=load("error_not_authenticated.json"))
    with pytest.raises(PermissionDenied):
        adapter.list_members()


# --- writing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visibility", "flags"),
    [
        ("internal", {"internalAnalysisFlag": True, "detailDescriptionFlag": False}),
        ("client", {"internalAnalysisFlag": False, "detailDescriptionFlag": True}),
    ],
)
def test_post_note_flags(rsps: Any, adapter: Any, visibility: str, flags: dict) -> None:
    companyinfo(rsps)
    rsps.post(f"{API}/service/tickets/104512/notes", json={"id": 991822, "ticketId": 104512})
    note_id = adapter.post_note("104512", "Problem: ...", visibility=visibility, title="Handoff")
    assert note_id == "991822"
    sent = json.loads(rsps.calls[-1].request.body)
    assert sent == {
        "text": "Handoff\n\nProblem: ...",
        "resolutionFlag": False,
        "processNotifications": False,
        **flags,
    }


def test_set_status_patches_with_the_board_status_id(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    ticket = {**load("ticket.json"), "status": {"id": 501, "name": "New"}}
    rsps.get(f"{API}/service/tickets/104512", json=ticket)
    rsps.get(
        f"{API}/service/boards/1/statuses",
        json=[{"id": 512, "name": "Escalated", "boardId": 1}],
        match=[
            matchers.query_param_matcher({"pageSize": "1000", "conditions": 'name="Escalated"'})
        ],
    )
    rsps.patch(f"{API}/service/tickets/104512", json=load("ticket.json"))
    adapter.set_status("104512", "Escalated")
    assert json.loads(rsps.calls[-1].request.body) == [
        {"op": "replace", "path": "status", "value": {"id": 512}}
    ]


def test_set_status_unknown_status_is_not_found(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/service/tickets/104512", json=load("ticket.json"))
    rsps.get(f"{API}/service/boards/1/statuses", json=[])
    with pytest.raises(NotFound, match="Help Desk"):
        adapter.set_status("104512", "Resolved")


def test_install_webhook_creates_once_and_finds_it_the_second_time(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    callbacks = f"{API}/system/callbacks"
    search = matchers.query_param_matcher(
        {"pageSize": "1000", "conditions": 'url contains "baton.example.com"'}
    )
    rsps.get(callbacks, json=[], match=[search])
    rsps.get(callbacks, json=[load("callback_created.json")], match=[search])
    rsps.post(callbacks, json=load("callback_created.json"))
    callback_url = "https://baton.example.com/webhooks/connectwise/acme"

    first = adapter.install_webhook(callback_url)
    second = adapter.install_webhook(callback_url)

    assert (first.created, first.id, first.active) == (True, "26552", True)
    assert (second.created, second.id) == (False, "26552")
    posts = [c for c in rsps.calls if c.request.method == "POST"]
    assert len(posts) == 1
    assert json.loads(posts[0].request.body) == {
        "url": callback_url + "?recordId=",
        "objectId": 1,
        "type": "ticket",
        "level": "owner",
        "description": "Baton escalation handoffs",
        "inactiveFlag": False,
        "isSelfSuppressedFlag": True,
        "payloadVersion": "3.0.0",
    }


def test_install_webhook_repairs_an_inactive_registration(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    existing = {**load("callback_created.json"), "inactiveFlag": True}
    existing["url"] = "https://baton.example.com/webhooks/connectwise/acme?x=1&recordId="
    rsps.get(f"{API}/system/callbacks", json=[existing])
    rsps.patch(f"{API}/system/callbacks/26552", json={**existing, "inactiveFlag": False})
    found = adapter.install_webhook("https://baton.example.com/webhooks/connectwise/acme?x=1")
    assert (found.created, found.active) == (False, True)
    assert json.loads(rsps.calls[-1].request.body) == [
        {"op": "replace", "path": "inactiveFlag", "value": False},
        {"op": "replace", "path": "isSelfSuppressedFlag", "value": True},
    ]


# --- setup checks --------------------------------------------------------------------------


def test_connection_all_good(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/info", json=load("system_info.json"))
    rsps.get(f"{API}/service/tickets", json=[load("ticket.json")])
    check = adapter.test_connection()
    assert check.ok and [c[0] for c in check.checks] == ["Company ID", "API keys", "Ticket access"]


def test_connection_bad_keys(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/info", status=401, json=load("error_not_authenticated.json"))
    check = adapter.test_connection()
    assert not check.ok
    what, passed, detail = check.checks[-1]
    assert (what, passed) == ("API keys", False) and "public/private key pair" in detail
    assert_no_secrets(check.checks)


def test_connection_missing_client_id(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/info", status=401, json=load("error_unauthorized_client_id.json"))
    check = adapter.test_connection()
    assert check.checks[-1] == (
        "Client ID",
        False,
        "the clientId header was refused: register one at developer.connectwise.com "
        "and paste it into Client ID",
    )


def test_connection_role_without_ticket_access(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/info", json=load("system_info.json"))
    rsps.get(f"{API}/service/tickets", status=403, json={"code": "Forbidden", "message": "denied"})
    check = adapter.test_connection()
    assert not check.ok
    assert check.checks[-1] == (
        "Ticket access",
        False,
        "the API member's security role cannot read Service Tickets: "
        "give it Service Desk > Service Tickets Inquire",
    )


def test_connection_unreachable_host(rsps: Any, adapter: Any, waits: list) -> None:
    rsps.get(COMPANYINFO, body=requests.ConnectionError("connection refused"))
    check = adapter.test_connection()
    assert check == ConnectionCheck(
        ok=False, checks=(("Site", False, "cannot reach api-na.myconnectwise.net: check Site"),)
    )
    assert_no_secrets(check.checks)


def assert_no_secrets(checks: Any) -> None:
    text = repr(checks)
    assert SETTINGS["public_key"] not in text and SETTINGS["private_key"] not in text


def test_verify_member(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/myMembers/info", json=load("my_member_info.json"))
    assert adapter.verify_member("SSeniorR", "hash-from-the-pod") == "sseniorr"
    sent = rsps.calls[-1].request.headers
    assert (
        sent["Authorization"]
        == "Basic " + base64.b64encode(b"acmemsp+SSeniorR:hash-from-the-pod").decode()
    )
    assert sent["clientId"] == SETTINGS["client_id"]


def test_verify_member_refused(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/myMembers/info", status=401, json=load("error_not_authenticated.json"))
    with pytest.raises(AuthenticationFailed):
        adapter.verify_member("sseniorr", "stale")
    with pytest.raises(AuthenticationFailed):
        adapter.verify_member("", "x")


def test_verify_member_must_be_the_claimed_member(rsps: Any, adapter: Any) -> None:
    companyinfo(rsps)
    rsps.get(f"{API}/system/myMembers/info", json=load("my_member_info.json"))
    with pytest.raises(AuthenticationFailed):
        adapter.verify_member("someoneelse", "hash")


# --- webhook signatures --------------------------------------------------------------------


def test_signature_ok_and_key_cached(rsps: Any, adapter: Any) -> None:
    rsps.get(KEY_URL, json={"signing_key": SIGNING_KEY})
    body = raw("callback_escalated.json")
    adapter.verify_webhook(webhook(body, sign(body)))
    adapter.verify_webhook(webhook(body, sign(body)))
    assert len(rsps.calls) == 1
    assert "Authorization" not in rsps.calls[0].request.headers  # no credentials to key_url


def test_signature_mismatch(rsps: Any, adapter: Any) -> None:
    rsps.get(KEY_URL, json={"signing_key": SIGNING_KEY})
    body = raw("callback_escalated.json")
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(body, sign(body, "another key")))
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(body.replace(b"Escalated", b"Escalatex"), sign(body)))


def test_rotated_key_is_refetched_once(rsps: Any, adapter: Any) -> None:
    rsps.get(KEY_URL, json={"signing_key": "old key"})
    rsps.get(KEY_URL, json={"signing_key": SIGNING_KEY})
    first = raw("callback_other_status.json")
    adapter.verify_webhook(webhook(first, sign(first, "old key")))
    body = raw("callback_escalated.json")
    adapter.verify_webhook(webhook(body, sign(body)))
    assert len(rsps.calls) == 2


def test_missing_signature_header(rsps: Any, adapter: Any) -> None:
    with pytest.raises(WebhookRejected, match="missing x-content-signature"):
        adapter.verify_webhook(webhook(raw("callback_escalated.json")))
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    "key_url",
    [
        "https://evil.example.com/system/callbackkey?companyName=acmemsp",
        "https://api-na.myconnectwise.net.evil.example.com/key?companyName=acmemsp",
        "https://evil.example.com@api-na.myconnectwise.net/key?companyName=acmemsp",
        "https://api-na.myconnectwise.net:8443/key?companyName=acmemsp",
        "http://api-na.myconnectwise.net/key?companyName=acmemsp",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
    ],
)
def test_foreign_key_url_is_refused_without_any_request(
    rsps: Any, adapter: Any, key_url: str
) -> None:
    body = with_key_url("callback_escalated.json", key_url)
    with pytest.raises(WebhookRejected, match="key_url host not allowed"):
        adapter.verify_webhook(webhook(body, sign(body)))
    assert len(rsps.calls) == 0


def test_key_url_of_another_company_is_refused(rsps: Any, adapter: Any) -> None:
    body = with_key_url("callback_escalated.json", KEY_URL.replace("acmemsp", "rivalmsp"))
    with pytest.raises(WebhookRejected, match="another ConnectWise company"):
        adapter.verify_webhook(webhook(body, sign(body)))
    assert len(rsps.calls) == 0


def test_a_key_url_allowed_for_one_company_is_still_refused_for_another(
    rsps: Any, adapter: Any
) -> None:
    rsps.get(KEY_URL, json={"signing_key": SIGNING_KEY})
    body = raw("callback_escalated.json")
    adapter.verify_webhook(webhook(body, sign(body)))  # allowed, and the verdict remembered
    rival = ConnectWiseAdapter({**SETTINGS, "company_id": "rivalmsp"}, AdapterOptions())
    with pytest.raises(WebhookRejected, match="another ConnectWise company"):
        rival.verify_webhook(webhook(body, sign(body)))
    assert len(rsps.calls) == 1  # the rival's check sent nothing


def test_http_key_url_only_for_the_sandbox_site_with_private_urls_allowed(rsps: Any) -> None:
    key_url = f"{SANDBOX}/v2025_1//system/callbackkey/index.rails?companyName=acmemsp&id=1"
    body = with_key_url("callback_escalated.json", key_url)
    request = webhook(body, sign(body))
    settings = {**SETTINGS, "site": SANDBOX}
    strict = ConnectWiseAdapter(settings, AdapterOptions(allow_private_urls=False))
    with pytest.raises(WebhookRejected, match="key_url host not allowed"):
        strict.verify_webhook(request)
    elsewhere = {**settings, "site": "http://127.0.0.1:6000/sandbox/connectwise"}
    with pytest.raises(WebhookRejected, match="key_url host not allowed"):
        ConnectWiseAdapter(elsewhere, AdapterOptions(allow_private_urls=True)).verify_webhook(
            request
        )
    assert len(rsps.calls) == 0

    rsps.get(key_url, json={"signing_key": SIGNING_KEY})
    ConnectWiseAdapter(settings, AdapterOptions(allow_private_urls=True)).verify_webhook(request)
    assert len(rsps.calls) == 1


def test_key_fetch_failure_names_the_reason_without_secrets(rsps: Any, adapter: Any) -> None:
    rsps.get(KEY_URL, status=503, body="upstream down")
    body = raw("callback_escalated.json")
    with pytest.raises(WebhookRejected, match="HTTP 503") as caught:
        adapter.verify_webhook(webhook(body, sign(body)))
    assert "89966c04" not in str(caught.value)
    assert len(rsps.calls) == 1  # one attempt only: the sender is waiting


def test_signed_callback_for_another_company_is_refused(rsps: Any, adapter: Any) -> None:
    rsps.get(KEY_URL, json={"signing_key": SIGNING_KEY})
    payload = load("callback_escalated.json")
    payload["CompanyId"] = "rivalmsp"
    body = json.dumps(payload).encode()
    with pytest.raises(WebhookRejected, match="another ConnectWise company"):
        adapter.verify_webhook(webhook(body, sign(body)))


def test_body_that_is_not_json_is_malformed(adapter: Any) -> None:
    with pytest.raises(MalformedWebhook):
        adapter.verify_webhook(webhook(b"recordId=1", "sig"))


# --- webhook parsing -----------------------------------------------------------------------


def test_parse_escalation(adapter: Any) -> None:
    event = adapter.parse_webhook(webhook(raw("callback_escalated.json"), recordId="104512"))
    assert event == TicketEvent(
        ticket_id="104512",
        delivery_key="7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        status="Escalated",
        title="Outlook keeps asking for password - Dana Whitfield",
        actor="kpatel",
        ticket_number="104512",
    )


def test_parse_other_status_is_still_an_event(adapter: Any) -> None:
    event = adapter.parse_webhook(webhook(raw("callback_other_status.json")))
    assert isinstance(event, TicketEvent) and event.status == "Waiting on Customer"


def test_parse_keys_case_insensitively_and_entity_object(adapter: Any) -> None:
    payload = load("callback_escalated.json")
    entity = json.loads(payload.pop("Entity"))
    entity["_info"]["updatedBy"] = "jjunior"
    payload.update(
        MessageID=payload.pop("MessageId"), Id=payload.pop("ID"), entity=entity, MemberId=""
    )
    event = adapter.parse_webhook(webhook(json.dumps(payload).encode()))
    assert isinstance(event, TicketEvent)
    assert (event.ticket_id, event.actor) == ("104512", "jjunior")


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("callback_project_ticket.json", "project ticket (recordType=ProjectTicket)"),
        ("callback_deleted.json", "ticket deleted"),
        ("callback_contact.json", "not a ticket callback (type=contact)"),
    ],
)
def test_parse_ignored(adapter: Any, fixture: str, reason: str) -> None:
    result = adapter.parse_webhook(webhook(raw(fixture)))
    assert result == Ignored(reason, delivery_key=load(fixture)["MessageId"])


def test_parse_without_entity_is_ignored(adapter: Any) -> None:
    payload = {**load("callback_escalated.json"), "Entity": ""}
    result = adapter.parse_webhook(webhook(json.dumps(payload).encode()))
    assert isinstance(result, Ignored) and result.reason == "no entity"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MessageId": None}, "no MessageId"),
        ({"ID": None}, "no numeric ID"),
        ({"Entity": "{not json"}, "Entity is not JSON"),
        ({"Entity": "[1, 2]"}, "not a JSON object"),
    ],
)
def test_parse_malformed(adapter: Any, change: dict, message: str) -> None:
    payload = {**load("callback_escalated.json"), **change}
    with pytest.raises(MalformedWebhook, match=message):
        adapter.parse_webhook(webhook(json.dumps(payload).encode()))


def test_parse_record_id_must_match(adapter: Any) -> None:
    with pytest.raises(MalformedWebhook, match="does not match"):
        adapter.parse_webhook(webhook(raw("callback_escalated.json"), recordId="1"))


# --- registry ------------------------------------------------------------------------------


def test_registry_builds_the_connectwise_adapter() -> None:
    assert vendors()["connectwise"].connect is ConnectWiseAdapter
    built = adapter_for("connectwise", SETTINGS, AdapterOptions())
    assert isinstance(built, ConnectWiseAdapter) and built.vendor == "connectwise"
    with pytest.raises(ValueError, match="unknown PSA vendor"):
        adapter_for("nosuchpsa", SETTINGS, AdapterOptions())


def test_missing_settings_are_named() -> None:
    with pytest.raises(AdapterError, match="client_id"):
        ConnectWiseAdapter({**SETTINGS, "client_id": ""}, AdapterOptions())


def test_fetch_resolution_reads_the_closed_tickets_resolution_notes(rsps: Any) -> None:
    companyinfo(rsps)
    ticket = load("ticket.json")
    adapter = ConnectWiseAdapter(
        {**SETTINGS, "site": "https://na.myconnectwise.net"}, AdapterOptions()
    )
    rsps.get(f"{API}/service/tickets/104512", json=ticket)
    assert adapter.fetch_resolution("104512") is None  # still open: nothing to read

    closed = {**ticket, "closedFlag": True, "closedDate": "2024-02-07T10:00:00Z",
              "closedBy": "sseniorr"}  # fmt: skip
    rsps.replace(responses.GET, f"{API}/service/tickets/104512", json=closed)
    notes = [
        {"id": 2, "text": "Excluded it from the runbook", "resolutionFlag": True,
         "dateCreated": "2024-02-07T09:59:00Z", "member": {"identifier": "sseniorr"}},
        {"id": 1, "text": "Re-enabled KV-LT-0231 in Entra", "resolutionFlag": True,
         "dateCreated": "2024-02-07T09:50:00Z", "member": {"identifier": "sseniorr"}},
        {"id": 3, "text": "Called Dana", "internalAnalysisFlag": True,
         "dateCreated": "2024-02-07T09:55:00Z"},
    ]  # fmt: skip
    rsps.get(f"{API}/service/tickets/104512/notes", json=notes)
    found = adapter.fetch_resolution("104512")
    assert found is not None
    assert found.text == "Re-enabled KV-LT-0231 in Entra\n\nExcluded it from the runbook"
    assert found.resolved_by == "sseniorr"
    assert found.resolved_at is not None and found.resolved_at.isoformat().startswith("2024-02-07")
