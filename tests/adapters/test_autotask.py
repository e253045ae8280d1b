"""Autotask adapter against recorded-shape payloads, over HTTP with `responses`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import adapters.autotask.client as at
import adapters.autotask.webhook as at_webhook
from adapters import adapter_for
from adapters.autotask.adapter import AutotaskAdapter
from adapters.base import (
    AdapterError,
    AdapterOptions,
    AuthenticationFailed,
    ConnectionCheck,
    Ignored,
    MalformedWebhook,
    NotFound,
    PermissionDenied,
    RateLimited,
    TicketEvent,
    Unavailable,
    WebhookRejected,
    WebhookRequest,
)

FIXTURES = Path(at.__file__).parent / "fixtures"
ZONE_LOOKUP = at.ZONE_DISCOVERY_URL
ZONE = "https://webservices5.autotask.net/ATServicesRest/"
API = ZONE + "V1.0"
USER = "baton-api@acmemsp.com"
WEBHOOK_SECRET = "whsec-0123456789abcdef"
SETTINGS = {
    "username": USER,
    "secret": "S3cr3t-Value-99",
    "integration_code": "ABCDEFGHIJKLMNOPQRSTUVWXYZ1",
    "webhook_secret": WEBHOOK_SECRET,
}
CALLBACK = "https://baton.example.com/webhooks/autotask/acme"
GUID = "a1da62a4-2c49-40a8-8183-69994ce5b3eb"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode()


def webhook(body: bytes, signature: str | None = None, **query: str) -> WebhookRequest:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["X-Hook-Signature"] = signature
    return WebhookRequest(body=body, headers=headers, query=query)


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


@pytest.fixture(autouse=True)
def clean_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    at._ZONES.clear()
    at._SLOTS.clear()

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
def adapter(waits: list[float]) -> AutotaskAdapter:
    return AutotaskAdapter(SETTINGS, AdapterOptions(), sleep=waits.append)


def zone(rsps: Any, url: str = ZONE, **fields: Any) -> None:
    body = {**load("zone_information.json"), "url": url, **fields}
    rsps.get(ZONE_LOOKUP, json=body, match=[matchers.query_param_matcher({"user": USER})])


def query(entity: str, *filters: dict[str, Any], max_records: int = 500) -> Any:
    return matchers.json_params_matcher({"filter": list(filters), "MaxRecords": max_records})


def eq(field: str, value: Any) -> dict[str, Any]:
    return {"op": "eq", "field": field, "value": value}


def zone_calls(rsps: Any) -> int:
    return sum(1 for c in rsps.calls if c.request.url.startswith(ZONE_LOOKUP))


def register_context(rsps: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    rsps.get(f"{API}/Tickets/entityInformation/fields", json=load("ticket_fields.json"))
    rsps.get(f"{API}/Companies/174", json=load("company_174.json"))
    rsps.get(f"{API}/Contacts/30684", json=load("contact_30684.json"))
    for rid in (29682885, 29682886):
        rsps.get(f"{API}/Resources/{rid}", json=load(f"resource_{rid}.json"))
    by_ticket = query("TicketNotes", eq("ticketID", 351181))
    page1 = load("ticketnotes_page1.json")
    rsps.post(f"{API}/TicketNotes/query", json=page1, match=[by_ticket])
    rsps.post(
        page1["pageDetails"]["nextPageUrl"], json=load("ticketnotes_page2.json"), match=[by_ticket]
    )
    rsps.post(
        f"{API}/TimeEntries/query",
        json=load("time_entries.json"),
        match=[query("TimeEntries", eq("ticketID", 351181))],
    )
    rsps.post(
        f"{API}/TicketAdditionalConfigurationItems/query",
        json=load("additional_configuration_items.json"),
    )
    for cid in (412, 413):
        rsps.get(f"{API}/ConfigurationItems/{cid}", json=load(f"configuration_item_{cid}.json"))
    rsps.get(f"{API}/ConfigurationItems/414", json={"item": None})  # deleted since attached
    rsps.get(
        f"{API}/ConfigurationItems/entityInformation/fields",
        json=load("configuration_item_fields.json"),
    )


# --- zone discovery and transport ----------------------------------------------------------------


def test_headers_and_anonymous_zone_lookup(rsps: Any, adapter: AutotaskAdapter) -> None:
    zone(rsps)
    rsps.post(f"{API}/Tickets/351181/Notes", json=load("note_created.json"))
    adapter.post_note("351181", "Problem: ...", visibility="internal")
    lookup, create = rsps.calls
    assert lookup.request.url == f"{ZONE_LOOKUP}?user=baton-api%40acmemsp.com"
    assert not {"ApiIntegrationCode", "UserName", "Secret"} & set(lookup.request.headers)
    headers = create.request.headers
    assert headers["ApiIntegrationCode"] == SETTINGS["integration_code"]
    assert headers["UserName"] == USER and headers["Secret"] == SETTINGS["secret"]
    assert headers["Content-Type"] == "application/json"
    assert "Authorization" not in headers  # Autotask is not Basic auth
    assert ZONE_LOOKUP.endswith("/V1.0/zoneInformation")  # V1.0 pinned, never "the latest"


def test_zone_is_discovered_once_and_cached(rsps: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    for _ in range(2):  # two adapters for the same API user share the module cache
        AutotaskAdapter(SETTINGS, AdapterOptions())._item("Tickets/351181")
    assert zone_calls(rsps) == 1
    assert at._ZONES[USER].url == ZONE and at._ZONES[USER].web_url == "https://ww5.autotask.net/"


def test_zone_is_re_resolved_after_a_401(rsps: Any, adapter: AutotaskAdapter) -> None:
    moved = "https://webservices15.autotask.net/ATServicesRest/"
    at._ZONES[USER] = at.Zone(ZONE)  # cached from before the tenant moved
    rsps.get(f"{API}/Tickets/351181", status=401, json=load("error_unauthorized.json"))
    zone(rsps, moved)
    rsps.get(f"{moved}V1.0/Tickets/351181", json=load("ticket.json"))
    assert adapter._item("Tickets/351181")["id"] == 351181
    assert at._ZONES[USER].url == moved and zone_calls(rsps) == 1


def test_401_in_the_same_zone_is_a_clear_authentication_error(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/351181", status=401, json=load("error_unauthorized.json"))
    with pytest.raises(AuthenticationFailed, match="wrong Secret or API user") as caught:
        adapter.fetch_context("351181")
    assert "Authorization has been denied" in str(caught.value) and caught.value.status == 401
    assert zone_calls(rsps) == 2  # re-resolved once, not in a loop


def test_unknown_api_user_is_a_clear_error(rsps: Any, adapter: Any, waits: list) -> None:
    rsps.get(ZONE_LOOKUP, status=500, json=load("zone_unknown_user.json"))
    with pytest.raises(AuthenticationFailed) as caught:
        adapter.fetch_context("351181")
    assert str(caught.value) == (
        "Autotask does not know the API user baton-api@acmemsp.com: check API user"
    )
    assert zone_calls(rsps) == 1 and waits == []  # not retried, never guessed


def test_zone_url_setting_skips_discovery(rsps: Any) -> None:
    settings = {**SETTINGS, "zone_url": "webservices5.autotask.net/ATServicesRest/V1.0/"}
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    AutotaskAdapter(settings, AdapterOptions())._item("Tickets/351181")
    assert zone_calls(rsps) == 0 and rsps.calls[0].request.url == f"{API}/Tickets/351181"


def test_discovered_zone_must_be_an_autotask_host(rsps: Any, adapter: Any) -> None:
    zone(rsps, "https://webservices5.autotask.net.evil.example.com/ATServicesRest/")
    with pytest.raises(AdapterError, match="unexpected host"):
        adapter.fetch_context("351181")
    assert len(rsps.calls) == 1  # the credentials went nowhere


def test_thread_threshold_refusal_is_retried_with_backoff(
    rsps: Any, adapter: Any, waits: list
) -> None:
    zone(rsps)
    url = f"{API}/Tickets/351181/Notes"
    rsps.post(url, status=500, json=load("error_thread_threshold.json"))
    rsps.post(url, json=load("note_created.json"))
    assert adapter.post_note("351181", "text", visibility="internal") == "30691912"
    assert len(waits) == 1 and 0 < waits[0] <= 1.0  # a create refused before it ran is safe


def test_thread_threshold_that_persists_is_rate_limited(
    rsps: Any, adapter: Any, waits: list
) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/351181", status=500, json=load("error_thread_threshold.json"))
    with pytest.raises(RateLimited, match="3 concurrent requests per endpoint") as caught:
        adapter.fetch_context("351181")
    assert caught.value.retryable and caught.value.vendor_code == "Itgenatr005"
    assert len(waits) == 3 and waits == sorted(waits)


def test_429_waits_for_retry_after(rsps: Any, adapter: Any, waits: list) -> None:
    zone(rsps)
    url = f"{API}/Tickets/351181"
    rsps.get(url, status=429, headers={"Retry-After": "7"})
    rsps.get(url, json=load("ticket.json"))
    assert adapter._item("Tickets/351181")["id"] == 351181
    assert waits == [7.0]


def test_permission_500_is_permission_denied_and_not_retried(
    rsps: Any, adapter: Any, waits: list
) -> None:
    zone(rsps)
    rsps.post(f"{API}/Tickets/351181/Notes", status=500, json=load("error_permission.json"))
    with pytest.raises(PermissionDenied, match="does not have the adequate permissions"):
        adapter.post_note("351181", "text", visibility="internal")
    assert waits == [] and len(rsps.calls) == 2


def test_no_matching_records_500_is_not_found(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/entityInformation/fields", json=load("ticket_fields.json"))
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    rsps.patch(f"{API}/Tickets", status=500, json=load("error_no_matching_records.json"))
    with pytest.raises(NotFound, match="No matching records found"):
        adapter.set_status("351181", "13")


def test_error_body_becomes_one_clear_message(rsps: Any, adapter: Any, waits: list) -> None:
    zone(rsps)
    rsps.post(f"{API}/Tickets/351181/Notes", status=500, json=load("error_validation.json"))
    with pytest.raises(Unavailable) as caught:
        adapter.post_note("351181", "text", visibility="internal")
    assert str(caught.value) == (
        "autotask answered 500 to POST /ATServicesRest/V1.0/Tickets/351181/Notes: "
        "Title is required for this ticket category.; "
        "description: Value exceeds the maximum length."
    )
    assert waits == []  # a note is never created twice by a blind retry


def test_a_read_is_retried_after_a_server_error(rsps: Any, adapter: Any, waits: list) -> None:
    zone(rsps)
    url = f"{API}/Tickets/351181"
    rsps.get(url, status=503, body="<html>Service Unavailable</html>")
    rsps.get(url, json=load("ticket.json"))
    assert adapter._item("Tickets/351181")["id"] == 351181 and len(waits) == 1


def test_at_most_three_requests_per_endpoint_at_once() -> None:
    running: dict[str, int] = {"tickets": 0, "notes": 0}
    peak: dict[str, int] = {"tickets": 0, "notes": 0}
    lock = threading.Lock()

    def call(url: str, kind: str) -> None:
        with at._thread_slot(USER, url):
            with lock:
                running[kind] += 1
                peak[kind] = max(peak[kind], running[kind])
            time.sleep(0.05)
            with lock:
                running[kind] -= 1

    threads = [
        threading.Thread(target=call, args=(f"{API}/Tickets/{i}", "tickets")) for i in range(6)
    ] + [threading.Thread(target=call, args=(f"{API}/TicketNotes/query", "notes"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == {"tickets": 3, "notes": 1}


# --- reading -------------------------------------------------------------------------------------


def test_fetch_context_follows_next_page_and_maps_records(rsps: Any, adapter: Any) -> None:
    register_context(rsps)
    context = adapter.fetch_context("351181")

    ticket = context.ticket
    assert (ticket.id, ticket.number, ticket.status) == ("351181", "T20250304.0042", "8")
    assert (ticket.priority, ticket.board) == ("P3 Medium", "Help Desk")
    assert (ticket.company, ticket.contact) == ("Keller & Vance LLP", "Dana Whitfield")
    assert ticket.description.startswith("Since this morning Outlook asks")
    assert ticket.created_at is not None and ticket.created_at.isoformat().startswith("2025-03-04")
    assert ticket.url == (
        "https://ww5.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx"
        "?Code=OpenTicketDetail&TicketID=351181"
    )
    # Both pages, in time order; the workflow rule note (noteType 13) is left out.
    assert [n.id for n in context.notes] == ["30691901", "30691903", "30691904", "30691905"]
    by_id = {n.id: n for n in context.notes}
    assert by_id["30691901"].internal and by_id["30691901"].author == "Kiran Patel"
    assert by_id["30691901"].text.startswith("Remote session\n\nRemoted in")
    assert not by_id["30691903"].internal and by_id["30691903"].author == "Dana Whitfield"
    assert not by_id["30691905"].internal and by_id["30691905"].author == "Jordan Reyes"
    next_page = [c for c in rsps.calls if "/query/next" in c.request.url]
    assert len(next_page) == 1 and next_page[0].request.method == "POST"
    assert [t.minutes for t in context.time_entries] == [45.0, 20.0]
    assert [t.member for t in context.time_entries] == ["Kiran Patel", "Jordan Reyes"]
    assert context.time_entries[0].notes == (
        "Remote session: creds, profile rebuild\nSuspect Entra device state"
    )
    laptop, tenant = context.configurations  # 414 is gone and skipped
    assert (laptop.name, laptop.type) == ("KV-LT-0231", "Workstation")
    assert dict(laptop.details) == {
        "os": "Windows 11 Pro 23H2", "ip": "10.20.1.87", "hostname": "KV-LT-0231",
        "serial": "5CG3281KQZ", "reference number": "ASSET-0231",
    }  # fmt: skip
    assert (tenant.name, tenant.type, dict(tenant.details)) == (
        "Keller & Vance M365", "Cloud Service", {},
    )  # fmt: skip
    # Each resource is looked up once per adapter.
    resource_calls = [c for c in rsps.calls if "/Resources/" in c.request.url]
    assert len(resource_calls) == 2


def test_missing_ticket_is_not_found(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/9", json={"item": None})
    with pytest.raises(NotFound, match="no ticket 9"):
        adapter.fetch_context("9")


def test_ticket_ids_must_be_numbers(rsps: Any, adapter: Any) -> None:
    for bad in ("351181/Notes", "1 OR 1=1", "²", "T20250304.0042"):
        with pytest.raises(NotFound):
            adapter.fetch_context(bad)
    assert len(rsps.calls) == 0


def test_pagination_never_follows_a_link_to_another_host(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    page = load("ticketnotes_page1.json")
    page["pageDetails"]["nextPageUrl"] = "https://evil.example.com/V1.0/TicketNotes/query/next"
    rsps.post(f"{API}/TicketNotes/query", json=page)
    with pytest.raises(AdapterError, match=r"pagination pointed at evil\.example\.com"):
        adapter.find_note("351181", "[baton-handoff #7]")
    assert not any("evil" in c.request.url for c in rsps.calls)


def test_list_statuses_are_the_active_picklist_values(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/entityInformation/fields", json=load("ticket_fields.json"))
    assert [(s.id, s.name, s.group) for s in adapter.list_statuses()] == [
        ("1", "New", ""), ("8", "In Progress", ""), ("7", "Waiting Customer", ""),
        ("13", "Escalated - Tier 2", ""), ("5", "Complete", ""),
    ]  # fmt: skip


def test_list_members_pages_through_resources_without_api_users(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Resources/entityInformation/fields", json=load("resource_fields.json"))
    everyone = query("Resources", {"op": "gte", "field": "id", "value": 0})
    first = load("resources_page1.json")
    rsps.post(f"{API}/Resources/query", json=first, match=[everyone])
    rsps.post(first["pageDetails"]["nextPageUrl"], json=load("resources_page2.json"))
    listed = adapter.list_members()
    # Webhooks name who acted by resource id (PersonID): that is the PSA id Baton keeps.
    assert [(m.psa_id, m.name, m.email, m.active) for m in listed] == [
        ("29682885", "Kiran Patel", "kpatel@acmemsp.com", True),
        ("29682886", "Sam Senior", "ssenior@acmemsp.com", True),
        ("29682887", "Dana Former", "dformer@acmemsp.com", False),
    ]  # API users (licenseType "API User", Baton's own among them) are not people to add


def test_list_members_without_field_information_still_leaves_baton_out(
    rsps: Any, adapter: Any
) -> None:
    zone(rsps)
    rsps.get(
        f"{API}/Resources/entityInformation/fields",
        status=500,
        json=load("error_permission.json"),
    )
    rsps.post(f"{API}/Resources/query", json=load("resources_page2.json"))
    assert [m.psa_id for m in adapter.list_members()] == ["29682887", "29682990"]


# --- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("visibility", "publish"), [("internal", 2), ("client", 1)])
def test_post_note_publish_and_title(
    rsps: Any, adapter: Any, visibility: str, publish: int
) -> None:
    zone(rsps)
    rsps.post(f"{API}/Tickets/351181/Notes", json=load("note_created.json"))
    assert adapter.post_note("351181", "Problem: ...", visibility=visibility) == "30691912"
    assert sent(rsps.calls[-1]) == {
        "ticketID": 351181,
        "title": "Baton escalation handoff",
        "description": "Problem: ...",
        "noteType": 1,
        "publish": publish,
    }


def test_post_note_keeps_the_marker_when_shortened(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.post(f"{API}/Tickets/351181/Notes", json=load("note_created.json"))
    text = "x" * 40000 + "\nGenerated by Baton. [baton-handoff #7]"
    adapter.post_note("351181", text, visibility="internal", title="Handoff " + "t" * 300)
    body = sent(rsps.calls[-1])
    assert len(body["description"]) == 32000
    assert body["description"].endswith("[baton-handoff #7]") and "shortened" in body["description"]
    assert body["title"].startswith("Handoff ") and len(body["title"]) == 250


def test_find_note_filters_and_checks_the_text(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    marker = "[baton-handoff #7]"
    notes = load("empty_query.json")
    notes["items"] = [
        {"id": 1, "description": "[baton-handoff #77] another escalation"},
        {"id": 30691912, "description": f"Escalation handoff\n... {marker}"},
    ]
    filters = (eq("ticketID", 351181), {"op": "contains", "field": "description", "value": marker})
    rsps.post(f"{API}/TicketNotes/query", json=notes, match=[query("TicketNotes", *filters)])
    assert adapter.find_note("351181", marker) == "30691912"
    notes["items"] = notes["items"][:1]
    rsps.replace(responses.POST, f"{API}/TicketNotes/query", json=notes)
    assert adapter.find_note("351181", marker) is None


@pytest.mark.parametrize("status", ["Escalated - Tier 2", "escalated - tier 2", "13"])
def test_set_status_patches_the_picklist_id(rsps: Any, adapter: Any, status: str) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/entityInformation/fields", json=load("ticket_fields.json"))
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    rsps.patch(f"{API}/Tickets", json={"itemId": 351181})
    adapter.set_status("351181", status)
    assert sent(rsps.calls[-1]) == {"id": 351181, "status": 13}


def test_set_status_already_there_or_unknown(rsps: Any, adapter: Any) -> None:
    zone(rsps)
    rsps.get(f"{API}/Tickets/entityInformation/fields", json=load("ticket_fields.json"))
    rsps.get(f"{API}/Tickets/351181", json=load("ticket.json"))
    adapter.set_status("351181", "In Progress")  # status 8 already: no PATCH, no webhook
    assert not any(c.request.method == "PATCH" for c in rsps.calls)
    with pytest.raises(NotFound, match="no ticket status 'Resolved'"):
        adapter.set_status("351181", "Resolved")


# --- installing the webhook ----------------------------------------------------------------------


def register_install(rsps: Any, existing: list[dict[str, Any]], fields: list, excluded: list):
    def page(items: list) -> dict[str, Any]:
        return {**load("empty_query.json"), "items": items}

    rsps.post(
        f"{API}/TicketWebhooks/query",
        json=page(existing),
        match=[query("TicketWebhooks", eq("webhookUrl", CALLBACK))],
    )
    rsps.get(
        f"{API}/TicketWebhookFields/entityInformation/fields", json=load("webhook_fields_info.json")
    )
    rsps.post(f"{API}/TicketWebhookFields/query", json=page(fields))
    rsps.post(f"{API}/TicketWebhookExcludedResources/query", json=page(excluded))
    rsps.post(
        f"{API}/Resources/query",
        json=load("api_resource.json"),
        match=[query("Resources", eq("userName", USER), max_records=10)],
    )
    rsps.post(f"{API}/TicketWebhooks/117/Fields", json={"itemId": 601})
    rsps.post(f"{API}/TicketWebhooks/117/ExcludedResources", json={"itemId": 701})
    rsps.patch(f"{API}/TicketWebhooks", json={"itemId": 117})


def writes(rsps: Any) -> list[tuple[str, str, Any]]:
    return [
        (c.request.method, c.request.url.removeprefix(API + "/"), sent(c))
        for c in rsps.calls
        if c.request.method in ("POST", "PATCH") and "/query" not in c.request.url
    ]


def test_install_creates_once_and_finds_it_the_second_time(rsps: Any) -> None:
    zone(rsps)
    created = {**load("ticket_webhooks.json")["items"][0], "isActive": True}
    register_install(rsps, [], [], [])
    rsps.post(f"{API}/TicketWebhooks", json=load("webhook_created.json"))
    fresh = AutotaskAdapter({**SETTINGS, "webhook_secret": ""}, AdapterOptions())
    first = fresh.install_webhook(CALLBACK)

    assert (first.id, first.url, first.active, first.created) == ("117", CALLBACK, True, True)
    assert first.secret is not None and len(first.secret) == 40
    (_, _, body), *children = writes(rsps)
    assert body == {
        "Name": "Baton escalations",
        "IsActive": True,
        "WebhookUrl": CALLBACK,
        "DeactivationUrl": CALLBACK + "?event=deactivated",
        "SecretKey": first.secret,
        "IsSubscribedToCreateEvents": False,
        "IsSubscribedToUpdateEvents": True,
        "IsSubscribedToDeleteEvents": False,
        "SendThresholdExceededNotification": True,
    }
    assert children == [  # one after another, never in parallel
        ("POST", "TicketWebhooks/117/Fields", {"WebhookID": 117, "FieldID": 4,
         "IsSubscribedField": True, "IsDisplayAlwaysField": False}),
        ("POST", "TicketWebhooks/117/Fields", {"WebhookID": 117, "FieldID": 9,
         "IsSubscribedField": False, "IsDisplayAlwaysField": True}),
        ("POST", "TicketWebhooks/117/Fields", {"WebhookID": 117, "FieldID": 6,
         "IsSubscribedField": False, "IsDisplayAlwaysField": True}),
        ("POST", "TicketWebhooks/117/ExcludedResources", {"WebhookID": 117,
         "ResourceID": 29682999}),
    ]  # fmt: skip

    rsps.reset()
    zone(rsps)
    rows = [{"id": 500 + f, "webhookID": 117, "fieldID": f} for f in (4, 6, 9)]
    register_install(rsps, [created], rows, [{"id": 701, "webhookID": 117, "resourceID": 29682999}])
    stored = AutotaskAdapter({**SETTINGS, "webhook_secret": first.secret}, AdapterOptions())
    second = stored.install_webhook(CALLBACK)
    assert (second.id, second.created, second.active, second.secret) == ("117", False, True, None)
    assert writes(rsps) == []


def test_install_reactivates_and_rekeys_a_webhook_whose_secret_baton_lost(
    rsps: Any,
) -> None:
    zone(rsps)
    rows = [{"id": 501, "webhookID": 117, "fieldID": 4, "isSubscribedField": True}]
    register_install(rsps, load("ticket_webhooks.json")["items"], rows, [])
    adapter = AutotaskAdapter({**SETTINGS, "webhook_secret": ""}, AdapterOptions())
    found = adapter.install_webhook(CALLBACK)

    assert (found.created, found.active) == (False, True) and found.secret
    (method, path, patch), *children = writes(rsps)
    assert (method, path) == ("PATCH", "TicketWebhooks")
    assert patch == {"id": 117, "IsActive": True, "SecretKey": found.secret}
    assert [(p, b.get("FieldID"), b.get("ResourceID")) for _, p, b in children] == [
        ("TicketWebhooks/117/Fields", 9, None),
        ("TicketWebhooks/117/Fields", 6, None),
        ("TicketWebhooks/117/ExcludedResources", None, 29682999),
    ]


def test_install_reactivates_without_rekeying_when_the_secret_is_stored(
    rsps: Any, adapter: Any
) -> None:
    zone(rsps)
    rows = [{"id": 500 + f, "webhookID": 117, "fieldID": f} for f in (4, 6, 9)]
    excluded = [{"id": 701, "webhookID": 117, "resourceID": 29682999}]
    register_install(rsps, load("ticket_webhooks.json")["items"], rows, excluded)
    found = adapter.install_webhook(CALLBACK)
    assert found.secret is None
    assert writes(rsps) == [("PATCH", "TicketWebhooks", {"id": 117, "IsActive": True})]


# --- setup checks --------------------------------------------------------------------------------


def register_checks(rsps: Any, *, threshold: dict | None = None, count: dict | None = None):
    zone(rsps)
    rsps.get(f"{API}/ThresholdInformation", **(threshold or {"json": load(
        "threshold_information.json")}))  # fmt: skip
    rsps.post(f"{API}/Tickets/query/count", **(count or {"json": load("tickets_count.json")}))


def assert_no_secrets(check: ConnectionCheck) -> None:
    text = repr(check)
    assert SETTINGS["secret"] not in text and SETTINGS["integration_code"] not in text


def test_connection_all_good(rsps: Any, adapter: Any) -> None:
    register_checks(rsps)
    check = adapter.test_connection()
    assert check.ok
    assert check.checks == (
        ("API user", True, "Autotask knows baton-api@acmemsp.com (zone webservices5.autotask.net)"),
        ("Credentials", True, "the API user, Secret and Integration code were accepted "
         "(1840 of 10000 requests used this hour)"),
        ("Ticket access", True, "the API user can read tickets (5128 visible)"),
    )  # fmt: skip
    assert sent(rsps.calls[-1]) == {"filter": [{"op": "gte", "field": "id", "value": 0}]}


def test_connection_unknown_api_user(rsps: Any, adapter: Any) -> None:
    rsps.get(ZONE_LOOKUP, status=500, json=load("zone_unknown_user.json"))
    check = adapter.test_connection()
    assert check == ConnectionCheck(
        ok=False,
        checks=(
            (
                "API user",
                False,
                "Autotask does not know the API user baton-api@acmemsp.com: check API user",
            ),
        ),
    )


def test_connection_wrong_secret(rsps: Any, adapter: Any) -> None:
    register_checks(rsps, threshold={"status": 401, "json": load("error_unauthorized.json")})
    check = adapter.test_connection()
    assert not check.ok
    assert check.checks[-1] == (
        "Credentials",
        False,
        "Autotask refused the API user and Secret: wrong Secret or API user",
    )
    assert_no_secrets(check)


def test_connection_wrong_integration_code(rsps: Any, adapter: Any, waits: list) -> None:
    register_checks(rsps, threshold={"status": 500, "json": load("error_integration_code.json")})
    check = adapter.test_connection()
    assert check.checks[-1] == (
        "Integration code",
        False,
        "the Integration code (API tracking identifier) is wrong",
    )
    assert waits == []
    assert_no_secrets(check)


def test_connection_security_level_cannot_read_tickets(rsps: Any, adapter: Any) -> None:
    register_checks(rsps, count={"status": 500, "json": load("error_permission.json")})
    check = adapter.test_connection()
    what, passed, detail = check.checks[-1]
    assert (what, passed) == ("Ticket access", False)
    assert detail.startswith("the API user's security level cannot read Tickets")


def test_connection_unreachable_host(rsps: Any, adapter: Any, waits: list) -> None:
    rsps.get(ZONE_LOOKUP, body=requests.ConnectionError("connection refused"))
    check = adapter.test_connection()
    assert check == ConnectionCheck(
        ok=False,
        checks=(("Autotask", False, "cannot reach webservices.autotask.net: check the network"),),
    )
    assert len(waits) == 3  # retried with backoff first


# --- webhook signatures --------------------------------------------------------------------------


def test_signature_over_the_raw_body_with_escaped_characters(adapter: Any) -> None:
    body = raw("webhook_escalated.json")
    title = json.loads(body)["Fields"]["Title"]
    assert all(ch in title for ch in "\u00e9&<>'\"+\u2013\u00fc")
    adapter.verify_webhook(webhook(body, sign(body)))
    # Header names are case-insensitive; the "sha1=" prefix is Autotask's.
    lower = WebhookRequest(body=body, headers={"x-hook-signature": sign(body)}, query={})
    adapter.verify_webhook(lower)


@pytest.mark.parametrize(
    "reserialise",
    [
        lambda body: json.dumps(json.loads(body)).encode(),
        lambda body: json.dumps(json.loads(body), separators=(",", ":")).encode(),
        lambda body: json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode(),
    ],
)
def test_re_serialising_the_body_breaks_the_signature(adapter: Any, reserialise: Any) -> None:
    body = raw("webhook_escalated.json")
    again = reserialise(body)
    assert again != body and json.loads(again) == json.loads(body)
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(again, sign(body)))


def test_raw_utf8_body_is_verified_as_received(adapter: Any) -> None:
    body = '{"Action":"Update","Guid":"g","EntityType":"Ticket","Id":1,"Fields":{"Title":"Café"}}'
    encoded = body.encode("utf-8")
    adapter.verify_webhook(webhook(encoded, sign(encoded)))


def test_body_un_escaped_on_the_way_still_verifies_against_autotasks_escaping(
    adapter: Any,
) -> None:
    body = raw("webhook_escalated.json")
    text = body.decode()
    for escaped, plain in [("\\u00E9", "é"), ("\\u0026", "&"), ("\\u003C", "<"), ("\\u003E", ">"),
                           ("\\u0027", "'"), ("\\u0022", '\\"'), ("\\u002B", "+"),
                           ("\\u2013", "\u2013"), ("\\u00FC", "ü")]:  # fmt: skip
        text = text.replace(escaped, plain)
    unescaped = text.encode("utf-8")
    assert (
        json.loads(unescaped) == json.loads(body)
        and at_webhook.autotask_escape(text) == body.decode()
    )
    adapter.verify_webhook(webhook(unescaped, sign(body)))


def test_signature_mismatch(adapter: Any) -> None:
    body = raw("webhook_escalated.json")
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(body, sign(body, "another secret")))
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(body.replace(b'"Status":13', b'"Status":14'), sign(body)))
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(webhook(body, "sha1="))


def test_missing_signature(adapter: Any) -> None:
    with pytest.raises(WebhookRejected, match="missing X-Hook-Signature"):
        adapter.verify_webhook(webhook(raw("webhook_escalated.json")))


def test_unsigned_deactivation_notice_is_refused(adapter: Any) -> None:
    with pytest.raises(WebhookRejected, match="missing X-Hook-Signature"):
        adapter.verify_webhook(webhook(raw("webhook_deactivated.json"), event="deactivated"))


def test_no_webhook_secret_configured() -> None:
    adapter = AutotaskAdapter({**SETTINGS, "webhook_secret": ""}, AdapterOptions())
    body = raw("webhook_escalated.json")
    with pytest.raises(
        WebhookRejected, match="no webhook secret configured: install the webhook first"
    ):
        adapter.verify_webhook(webhook(body, sign(body)))


# --- webhook parsing -----------------------------------------------------------------------------


def test_parse_escalation(adapter: Any) -> None:
    event = adapter.parse_webhook(webhook(raw("webhook_escalated.json")))
    assert event == TicketEvent(
        ticket_id="351181",
        delivery_key=f"{GUID}:351181:17",
        status="13",
        title="Café & <Bistro>: 'Chef's' \"POS\" + printer \u2013 Zürich",
        actor="29682885",
        ticket_number="T20250304.0042",
    )


def test_parse_person_id_spelled_person_id(adapter: Any) -> None:
    event = adapter.parse_webhook(webhook(raw("webhook_other_status.json")))
    assert isinstance(event, TicketEvent)
    assert (event.status, event.actor, event.delivery_key) == ("7", "29682886", f"{GUID}:351181:18")


def test_parse_keys_case_insensitively(adapter: Any) -> None:
    payload = {"action": "update", "GUID": GUID, "entityType": "ticket", "ID": "351181",
               "fields": {"status": "13", "ticketNumber": "T1", "TITLE": "x"},
               "sequenceNumber": 5, "personID": 7}  # fmt: skip
    event = adapter.parse_webhook(webhook(json.dumps(payload).encode()))
    assert event == TicketEvent("351181", f"{GUID}:351181:5", "13", "x", "7", "T1")


def test_create_is_decided_by_its_status_like_an_update(adapter: Any) -> None:
    payload = {**load("webhook_escalated.json"), "Action": "Create"}
    event = adapter.parse_webhook(webhook(json.dumps(payload).encode()))
    assert isinstance(event, TicketEvent) and event.status == "13"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("webhook_no_status.json", Ignored("status did not change", f"{GUID}:351181:19")),
        ("webhook_deleted.json", Ignored("ticket deleted", f"{GUID}:351190:20")),
        (
            "webhook_company.json",
            Ignored(
                "not a ticket webhook (EntityType=Company)",
                "0c6c5e1e-77f1-4c43-9d0e-5b0fe9a1d2c3:174:3",
            ),
        ),
        (
            "webhook_deactivated.json",
            Ignored("webhook deactivated by Autotask", f"{GUID}::21", recheck_webhook=True),
        ),
    ],
)
def test_parse_ignored(adapter: Any, fixture: str, expected: Ignored) -> None:
    assert adapter.parse_webhook(webhook(raw(fixture))) == expected


def test_a_delivery_to_the_deactivation_url_asks_for_a_recheck(adapter: Any) -> None:
    result = adapter.parse_webhook(webhook(raw("webhook_escalated.json"), event="deactivated"))
    assert isinstance(result, Ignored) and result.recheck_webhook


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"Action=Update", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"Action": "Update", "Guid": GUID, "EntityType": "Ticket"}), "no numeric Id"),
        (json.dumps({"Action": "Update", "Guid": GUID, "Id": "T1"}), "no numeric Id"),
        (json.dumps({"Action": "Update", "EntityType": "Ticket", "Id": 1}), "no Guid"),
    ],
)
def test_parse_malformed(adapter: Any, body: Any, message: str) -> None:
    payload = body if isinstance(body, bytes) else body.encode()
    with pytest.raises(MalformedWebhook, match=message):
        adapter.parse_webhook(webhook(payload))


# --- registry and settings -----------------------------------------------------------------------


def test_registry_builds_the_autotask_adapter() -> None:
    built = adapter_for("autotask", SETTINGS, AdapterOptions())
    assert isinstance(built, AutotaskAdapter) and built.vendor == "autotask"


def test_missing_settings_are_named() -> None:
    with pytest.raises(AdapterError, match="integration_code"):
        AutotaskAdapter({**SETTINGS, "integration_code": " "}, AdapterOptions())


def test_fetch_resolution_reads_a_complete_tickets_resolution_field(
    rsps: Any, adapter: AutotaskAdapter
) -> None:
    zone(rsps)
    ticket = load("ticket.json")
    rsps.get(f"{API}/Tickets/351181", json=ticket)
    assert adapter.fetch_resolution("351181") is None  # In Progress: nothing to read
    complete = {
        "item": {**ticket["item"], "status": 5, "resolution": "Re-enabled the laptop in Entra",
                 "completedDate": "2025-03-05T10:00:00Z", "completedByResourceID": 29682885}
    }  # fmt: skip
    rsps.replace(responses.GET, f"{API}/Tickets/351181", json=complete)
    rsps.get(f"{API}/Resources/29682885", json=load("resource_29682885.json"))
    found = adapter.fetch_resolution("351181")
    assert found is not None and found.text == "Re-enabled the laptop in Entra"
    assert found.resolved_by and found.resolved_at is not None
