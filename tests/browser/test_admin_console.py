"""The admin console in Chromium: a new tenant is set up entirely from the console against the
sandbox PSA (connection, test, trigger, install, a member, a test message), and its first
escalation arrives. Only the tenant and its first admin are made over the operator's admin API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from adapters.connectwise.sandbox.state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
)
from adapters.sandbox.store import BOARD_STATUSES, STATUSES
from tests.browser.conftest import SCREENSHOTS, TAB, BurstWorker, shot, wait_for
from tests.conftest import ADMIN_TOKEN
from tests.integration.pipeline import KITS

pytestmark = pytest.mark.browser


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class ChatReceiver:
    """A local stand-in for a Teams incoming webhook: records every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.server = make_server(
            "127.0.0.1", 0, self.wsgi, threaded=True, request_handler=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/teams/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ, start_response):
        self.messages.append(json.loads(Request(environ).get_data() or b"{}"))
        return Response("1")(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    receiver = ChatReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def empty_tenant(app_factory, live_server_factory, sandbox, fake_anthropic) -> Iterator[dict]:
    """Baton on a live server with an empty tenant: no connection, no webhook, one admin."""
    store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    created = operator.post(
        f"{live.url}/api/v1/admin/tenants",
        # The operator's API needs one status; it is not one the PSA has, so the console says so.
        json={"slug": "newco", "name": "NewCo IT", "vendor": "connectwise",
              "escalation_statuses": ["Needs senior"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    admin = operator.post(
        f"{live.url}/api/v1/admin/tenants/newco/members",
        json={"psa_member_id": "admin", "name": "Ada Admin", "email": "ada@newco.example",
              "role": "admin"},
    )  # fmt: skip
    assert admin.status_code == 201, admin.text
    link = operator.post(
        f"{live.url}/api/v1/admin/tenants/newco/members/{admin.json()['id']}/sign-in-link"
    )
    assert link.status_code == 201, link.text
    worker = BurstWorker(app).start()
    yield {
        "app": app,
        "url": live.url,
        "store": store,
        "server": server,
        "link": link.json()["url"],
    }
    worker.stop()


def open_console(browser, setup: dict, problems: list[str]) -> Page:
    context = browser.new_context(viewport=TAB, base_url=setup["url"])
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=setup["url"])
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(setup["link"])
    page.wait_for_url("**/panel/")
    page.goto("/panel/admin")
    expect(page.locator("#connection-fields input")).to_have_count(5)
    return page


def test_a_new_tenant_is_set_up_from_the_console_and_its_first_escalation_arrives(
    browser, empty_tenant, chat
):
    setup = empty_tenant
    store, server = setup["store"], setup["server"]
    problems: list[str] = []
    page = open_console(browser, setup, problems)
    connection = page.locator("#connection")

    # 1. Connection: a missing key is named beside its field, and what was typed stays.
    page.get_by_label("Site").fill(server.site("connectwise"))
    page.get_by_label("Company ID").fill("baton-sandbox")
    page.get_by_label("Public key").fill(SANDBOX_PUBLIC_KEY)
    page.get_by_label("Client ID").fill(SANDBOX_CLIENT_ID)
    connection.get_by_role("button", name="Save connection").click()
    error = connection.locator('.field-error[data-field="private_key"]')
    expect(error).to_have_text("Private key is required")
    expect(page.get_by_label("Private key")).to_be_focused()
    expect(page.get_by_label("Private key")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Company ID")).to_have_value("baton-sandbox")
    expect(page.get_by_label("Public key")).to_have_value(SANDBOX_PUBLIC_KEY)
    shot(page, "#connection", "admin-connection-error")

    page.get_by_label("Private key").fill(SANDBOX_PRIVATE_KEY)
    page.keyboard.press("Enter")  # the form submits from the keyboard
    expect(page.locator(".toast").first).to_contain_text("Connection saved")
    expect(error).to_be_hidden()
    expect(connection.locator(".set-state.is-set")).to_have_count(3)
    expect(page.get_by_label("Private key")).to_have_value("")  # write-only: never shown back
    connection.get_by_role("button", name="Test connection").click()
    checks = page.locator("#test-result .check-list li")
    expect(checks).to_have_count(3)
    expect(page.locator("#test-result")).to_contain_text("The connection works.")
    expect(page.locator("#test-result .check-ok")).to_have_count(3)
    expect(checks.nth(1)).to_contain_text("API keys")
    shot(page, "#connection", "admin-connection")

    # 2. Trigger: the PSA's own statuses as checkboxes; the placeholder status is flagged.
    trigger = page.locator("#trigger")
    # Every board's statuses, and the one status only the Security board has.
    board_only = sum(len(names) for names in BOARD_STATUSES.values())
    expect(trigger.get_by_role("checkbox")).to_have_count(len(STATUSES) + board_only)
    expect(trigger.locator(".warn-note")).to_contain_text("Needs senior")
    trigger.get_by_role("checkbox", name="Escalated").check()
    trigger.get_by_role("button", name="Save trigger").click()
    expect(page.locator(".toast").last).to_contain_text("Escalation trigger saved: Escalated")
    shot(page, "#trigger", "admin-trigger")

    # 3. Install: one button, the state, and the Hosted API values with Copy buttons.
    install = page.locator("#install")
    expect(page.locator("#webhook-state")).to_have_text("not installed")
    install.get_by_role("button", name="Install webhook").click()
    expect(page.locator("#webhook-state")).to_contain_text("installed and active")
    assert len(connectwise_state(store).callbacks()) == len(store.boards())  # one per board
    install.get_by_role("button", name="Install webhook").click()
    expect(page.locator(".toast").last).to_contain_text("found and checked")
    assert len(connectwise_state(store).callbacks()) == len(store.boards())  # one per board
    pod_url = f"{setup['url']}/panel/?tenant=newco&id=[cw_id]&screen=[cw_screen]"
    expect(install.locator(".paste code", has_text=pod_url)).to_be_visible()
    install.get_by_role("button", name="Copy URL").click()
    expect(page.locator(".toast").last).to_have_text("URL copied")
    assert page.evaluate("navigator.clipboard.readText()") == pod_url
    shot(page, "#install", "admin-install")

    # 4. Members: added by keyboard; the token is shown once; then a sign-in link for them.
    members = page.locator("#members")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("Sam Senior")
    page.keyboard.press("Tab")
    page.keyboard.type("sseniorr")
    page.keyboard.press("Tab")
    page.keyboard.type("sam@newco")  # not an address: the server says so beside the field
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # technician -> engineer
    page.keyboard.press("Tab")
    expect(members.get_by_role("button", name="Add member")).to_be_focused()
    page.keyboard.press("Enter")
    expect(members.locator('.field-error[data-field="email"]')).to_contain_text("valid email")
    expect(page.get_by_label("Email", exact=True)).to_be_focused()
    page.keyboard.type(".example")
    page.keyboard.press("Enter")
    expect(members.locator("#member-table tbody tr")).to_have_count(2)
    row = members.locator("#member-table tbody tr", has_text="Sam Senior")
    expect(row.get_by_role("combobox")).to_have_value("engineer")
    expect(page.locator("#once-value")).to_have_value(lambda_startswith("bt_"))
    token = page.locator("#once-value").input_value()
    me = requests.get(
        f"{setup['url']}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert me["member"]["role"] == "engineer"
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#once")).to_be_hidden()
    row.get_by_role("button", name="Make a sign-in link for Sam Senior").click()
    expect(page.locator("#once-label")).to_contain_text("Sign-in link for Sam Senior")
    expect(page.locator("#once-value")).to_have_value(
        lambda_startswith(f"{setup['url']}/panel/sign-in?token=")
    )
    shot(page, "#members", "admin-members")

    # 5. Settings: a Teams URL, tested with Send test message against the local receiver.
    settings = page.locator("#settings")
    page.get_by_label("Microsoft Teams webhook URL").fill(chat.url)
    settings.get_by_role("button", name="Send test message").click()
    expect(page.locator('#test-messages [data-channel="teams"]')).to_contain_text(
        "Sent a test message to Microsoft Teams."
    )
    expect(page.locator("#teams-state")).to_have_text("set")
    expect(page.get_by_label("Microsoft Teams webhook URL")).to_have_value("")
    assert len(chat.messages) == 1 and "Baton test message" in json.dumps(chat.messages[0])
    page.get_by_label("Week-8 threshold: hours saved a week to keep Baton").fill("0")
    settings.get_by_role("button", name="Save pilot").click()
    expect(settings.locator('.field-error[data-field="verdict_threshold_hours"]')).to_be_visible()
    page.get_by_label("Pilot start date").fill("2026-03-02")
    page.get_by_label("Week-8 threshold: hours saved a week to keep Baton").fill("2")
    settings.get_by_role("button", name="Save pilot").click()
    expect(page.locator(".toast").last).to_have_text("Pilot saved")
    page.get_by_label("Minutes").fill("14")
    page.get_by_label("Ticket", exact=True).fill("#98211")
    page.get_by_label("Note").fill("Phone call to ask what was tried")
    settings.get_by_role("button", name="Add entry").click()
    expect(page.locator("#baseline-table tbody tr")).to_have_count(1)
    expect(page.locator("#baseline-table tbody tr")).to_contain_text("Ada Admin")
    shot(page, "#settings", "admin-settings")

    # 6. The first escalation arrives: in the audit as accepted, and in the queue.
    store.escalate(104512, member="kpatel", reason="Device shows Disabled in Entra")
    wait_for(lambda: any(d.status == 202 for d in store.deliveries), what="the callback")
    audit = page.locator("#audit-table tbody tr")
    expect(audit.first).to_have_attribute("data-outcome", "accepted", timeout=10000)
    expect(audit.first.locator("a")).to_have_text(lambda_startswith("#"))
    assert len(chat.messages) >= 1
    shot(page, "#audit", "admin-audit")

    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(SCREENSHOTS / "admin-console.png"), full_page=True)

    page.goto("/panel/")
    queue_row = page.locator(".row", has_text="#104512")
    expect(queue_row).to_be_visible()
    expect(queue_row.locator(".row-title")).to_have_text(
        "#104512 Outlook keeps asking for password - Dana Whitfield"
    )
    page.context.close()
    assert not problems, problems


def test_a_non_admin_never_sees_the_console(browser, empty_tenant):
    setup = empty_tenant
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    eng = operator.post(
        f"{setup['url']}/api/v1/admin/tenants/newco/members",
        json={"psa_member_id": "eng", "name": "Eve Engineer", "email": "eve@newco.example",
              "role": "engineer"},
    ).json()  # fmt: skip
    link = operator.post(
        f"{setup['url']}/api/v1/admin/tenants/newco/members/{eng['id']}/sign-in-link"
    ).json()
    context = browser.new_context(viewport=TAB, base_url=setup["url"])
    page = context.new_page()
    page.goto(link["url"])
    page.wait_for_url("**/panel/")
    answer = page.goto("/panel/admin")
    assert answer is not None and answer.status == 403
    expect(page.locator(".error")).to_have_text(
        "The admin console is for your tenant's Baton admins."
    )
    expect(page.locator("#connection-form")).to_have_count(0)
    context.close()


def lambda_startswith(prefix: str):
    """A regular expression matching values that start with `prefix` (for expect)."""
    import re

    return re.compile("^" + re.escape(prefix))


def test_never_send_terms_and_patterns_are_managed_from_the_console(
    browser, empty_tenant, fake_anthropic
):
    problems: list[str] = []
    page = open_console(browser, empty_tenant, problems)
    section = page.locator("#redaction")
    expect(section.locator("#redaction-empty")).to_be_visible()

    form = section.locator("#redaction-form")
    form.locator("#redaction-kind").select_option("pattern")
    form.locator("#redaction-value").fill("(CTS-SVC")
    form.get_by_role("button", name="Add").click()
    error = form.locator('.field-error[data-field="value"]')
    expect(error).to_contain_text("not a valid pattern: missing )")
    expect(form.locator("#redaction-value")).to_have_value("(CTS-SVC")  # kept for fixing

    form.locator("#redaction-value").fill(r"CTS-SVC-\d{4}-[A-Z]")
    form.locator("#redaction-label").fill("Contoso service accounts")
    form.get_by_role("button", name="Add").click()
    rows = section.locator("#redaction-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(r"CTS-SVC-\d{4}-[A-Z]")
    expect(error).to_be_hidden()

    form.locator("#redaction-kind").select_option("term")
    form.locator("#redaction-value").fill("Falcon-Payroll")
    form.get_by_role("button", name="Add").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("hidden (14 characters)")
    expect(section).not_to_contain_text("Falcon-Payroll")

    sample = "svc_backup runs as CTS-SVC-4471-Q for falcon-payroll; temp pw is Harbor#Light72"
    section.locator("#redaction-sample").fill(sample)
    section.get_by_role("button", name="Show what the AI would see").click()
    result = section.locator("#redaction-result")
    expect(result).to_contain_text("svc_backup runs as [redacted: never_send] for")
    expect(result).to_contain_text("(2 never-send terms, 1 password removed)")
    expect(result).not_to_contain_text("Harbor#Light72")
    shot(page, "#redaction", "admin-redaction")

    section.get_by_role("button", name="Remove term of 14 characters").click()
    expect(rows).to_have_count(1)
    stored = requests.get(
        f"{empty_tenant['url']}/api/v1/admin/tenants/newco/redaction-patterns",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()
    assert [(p["kind"], p["label"]) for p in stored] == [("pattern", "Contoso service accounts")]
    page.context.close()
    assert not problems, problems

    # End to end: the pattern set in the console keeps its secret from the model.
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    tenant = f"{empty_tenant['url']}/api/v1/admin/tenants/newco"
    kit = KITS["connectwise"]
    for method, path, body in (
        ("PUT", "/connection", kit.connection(empty_tenant["server"])),
        ("PATCH", "", {"escalation_statuses": ["Escalated"]}),
        ("POST", "/webhooks/install", None),
    ):
        answer = operator.request(method, tenant + path, json=body)
        assert answer.status_code == 200, answer.text
    store = empty_tenant["store"]
    store.add_note(104512, "svc_backup uses CTS-SVC-4471-Q since May", author="kpatel")
    store.escalate(104512, member="kpatel", reason="Backups fail after the rotation")
    [sent] = wait_for(fake_anthropic.message_requests, what="the model call")
    assert "CTS-SVC-4471-Q" not in sent.raw and "[redacted: never_send]" in sent.raw


def test_people_are_imported_from_the_psa_in_the_console(browser, empty_tenant):
    setup, store = empty_tenant, empty_tenant["store"]
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    connected = operator.put(
        f"{setup['url']}/api/v1/admin/tenants/newco/connection",
        json={"site": setup["server"].site("connectwise"), "company_id": "baton-sandbox",
              "public_key": SANDBOX_PUBLIC_KEY, "private_key": SANDBOX_PRIVATE_KEY,
              "client_id": SANDBOX_CLIENT_ID},
    )  # fmt: skip
    assert connected.status_code == 200, connected.text
    problems: list[str] = []
    page = open_console(browser, setup, problems)
    section = page.locator("#members")
    people = section.locator("#import-table tbody tr")
    active = [m for m in store.members() if m.active and m.identifier != store.api_member]
    expect(people).to_have_count(len(active))
    expect(section.locator("#import-state")).to_contain_text(
        f"lists {len(active)} active people; {len(active) - 1} can be added"
    )
    me = people.filter(has_text="Sandbox Admin")
    expect(me).to_contain_text("already a member: admin")
    expect(me.get_by_role("checkbox")).to_be_disabled()

    # Found by name, given a role (which ticks them); another ticked with the default role.
    page.get_by_label("Find").fill("kiran")
    expect(people.locator("visible=true")).to_have_count(1)
    section.get_by_label("Role in Baton for Kiran Patel").select_option("engineer")
    expect(section.get_by_label("Add Kiran Patel")).to_be_checked()
    page.get_by_label("Find").fill("")
    section.get_by_label("Add Sam Senior").check()
    section.get_by_label("Add Tam Nguyen").check()
    expect(section.locator("#import-count")).to_have_text("3 chosen")

    # Someone else adds Tam meanwhile: nobody is added, and the list read again shows why.
    added = operator.post(
        f"{setup['url']}/api/v1/admin/tenants/newco/members",
        json={"psa_member_id": "tnguyen", "name": "Tam", "email": "tam@newco.example",
              "role": "technician"},
    )  # fmt: skip
    assert added.status_code == 201
    section.get_by_role("button", name="Add the chosen people").click()
    expect(section.locator("#import-form .form-error")).to_have_text(
        "Nobody was added: Tam Nguyen (tnguyen) is already a member, as technician. "
        "The list is read again from ConnectWise PSA."
    )
    expect(people.filter(has_text="Tam Nguyen")).to_contain_text("already a member: technician")
    expect(section.locator("#member-table tbody tr")).to_have_count(2)  # Ada and Tam only
    expect(section.locator("#import-count")).to_have_text("2 chosen")  # the others still are

    section.get_by_role("button", name="Add the chosen people").click()
    expect(page.locator(".toast").last).to_have_text("Added 2 members from ConnectWise PSA")
    members = section.locator("#member-table tbody tr")
    expect(members).to_have_count(4)
    kiran = members.filter(has_text="Kiran Patel")
    expect(kiran.get_by_role("combobox")).to_have_value("engineer")
    expect(kiran.locator(".psa-state")).to_have_text("active")
    expect(members.filter(has_text="Sam Senior").get_by_role("combobox")).to_have_value(
        "technician"
    )
    expect(people.filter(has_text="Kiran Patel")).to_contain_text("already a member: engineer")
    expect(section.locator("#import-count")).to_have_text("")

    # Deactivated people show when asked, and cannot be chosen.
    section.get_by_label("Show deactivated people").check()
    former = people.filter(has_text="Dana Former")
    expect(former).to_contain_text("deactivated in ConnectWise PSA")
    expect(former.get_by_role("checkbox")).to_be_disabled()

    # Kiran leaves: the next read flags them, and no sign-in link can be made for them.
    store.set_member_active("kpatel", False)
    section.get_by_role("button", name="Reload from ConnectWise PSA").click()
    expect(kiran.locator(".psa-state")).to_have_text("deactivated")
    expect(kiran.get_by_role("button", name="Make a sign-in link for Kiran Patel")).to_be_disabled()
    # Removed here: Sam can be chosen again, without another read of the PSA.
    remove_sam = section.get_by_role("button", name="Remove Sam Senior")
    remove_sam.click()
    remove_sam.click()  # "Confirm remove"
    expect(members).to_have_count(3)
    expect(section.get_by_label("Add Sam Senior")).to_be_enabled()
    shot(page, "#members", "admin-members-import")
    page.context.close()
    assert not problems, problems
