"""HaloPSA in Chromium: a Halo tenant set up from the console against the sandbox's Halo dialect
(connection, test, trigger, install through the API and by hand), and an agent signed in by the
custom tab's signed address. The screenshots are the Halo ones in docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from adapters.halopsa.identity import agent_signature
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TAB_SECRET,
    halo_state,
)
from tests.browser.conftest import TAB, BurstWorker, shot
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.browser


@pytest.fixture
def halo_tenant(app_factory, live_server_factory, sandbox, fake_anthropic) -> Iterator[dict]:
    """Baton with an empty Halo tenant whose first admin is the sandbox's admin agent."""
    store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    created = operator.post(
        f"{live.url}/api/v1/admin/tenants",
        json={"slug": "haloco", "name": "HaloCo IT", "vendor": "halopsa",
              "escalation_statuses": ["Needs senior"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    agents = {key: store.member(key) for key in ("admin", "sseniorr")}
    ids = {}
    for key, name, role in (
        ("admin", "Ada Admin", "admin"),
        ("sseniorr", "Sam Senior", "engineer"),
    ):
        agent = agents[key]
        assert agent is not None
        member = operator.post(
            f"{live.url}/api/v1/admin/tenants/haloco/members",
            json={"psa_member_id": str(agent.id), "name": name,
                  "email": f"{key}@haloco.example", "role": role},
        )  # fmt: skip
        assert member.status_code == 201, member.text
        ids[key] = member.json()["id"]
    link = operator.post(
        f"{live.url}/api/v1/admin/tenants/haloco/members/{ids['admin']}/sign-in-link"
    )
    assert link.status_code == 201, link.text
    worker = BurstWorker(app).start()
    yield {"url": live.url, "store": store, "server": server, "link": link.json()["url"],
           "agents": agents}  # fmt: skip
    worker.stop()


def watched(page: Page, problems: list[str]) -> Page:
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return page


def test_a_halo_tenant_is_set_up_from_the_console(browser, halo_tenant):
    setup = halo_tenant
    store, server = setup["store"], setup["server"]
    problems: list[str] = []
    context = browser.new_context(viewport=TAB, base_url=setup["url"])
    page = watched(context.new_page(), problems)
    page.goto(setup["link"])
    page.wait_for_url("**/panel/")
    page.goto("/panel/admin")
    expect(page.locator("#connection-fields input")).to_have_count(7)

    # 1. Connection: the Halo URL and the application's client ID and secret.
    connection = page.locator("#connection")
    page.get_by_label("Halo URL").fill(server.site("halopsa"))
    page.get_by_label("Client ID").fill(SANDBOX_HALO_CLIENT_ID)
    page.get_by_label("Client secret").fill(SANDBOX_HALO_CLIENT_SECRET)
    page.get_by_label("Custom tab secret").fill(SANDBOX_HALO_TAB_SECRET)
    connection.get_by_role("button", name="Save connection").click()
    expect(page.locator(".toast").first).to_contain_text("Connection saved")
    connection.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("The connection works.")
    expect(page.locator("#test-result .check-ok")).to_have_count(4)
    expect(page.locator("#test-result")).to_contain_text("Baton acts in Halo as Baton API")
    shot(page, "#connection", "admin-halo-connection")

    # 2. Trigger: Halo's own statuses.
    trigger = page.locator("#trigger")
    trigger.get_by_role("checkbox", name="Escalated").check()
    trigger.get_by_role("button", name="Save trigger").click()
    expect(page.locator(".toast").last).to_contain_text("Escalation trigger saved: Escalated")

    # 3. Install through Halo's API: the event is still ticked by hand, as the steps say.
    install = page.locator("#install")
    install.get_by_role("button", name="Install webhook").click()
    expect(page.locator("#webhook-state")).to_contain_text("installed and active")
    expect(page.locator("#webhook-steps-title")).to_be_visible()
    expect(
        install.locator("#webhook-steps .paste code", has_text="Ticket Status Changed")
    ).to_be_visible()
    tab_url = f"{setup['url']}/panel/?tenant=haloco"
    expect(install.locator("#panel-steps .paste code", has_text=tab_url)).to_be_visible()
    expect(page.locator("#panel-note")).to_contain_text("no time")
    shot(page, "#install", "admin-halo-install")
    assert len(halo_state(store).webhooks) == 1

    # ... and by hand, when the API agent may not manage webhooks: every value, once.
    halo_state(store).webhooks_api = False
    install.get_by_role("button", name="Install webhook").click()
    expect(page.locator(".toast").last).to_contain_text("Finish the webhook in the PSA")
    expect(install.locator("#webhook-steps dt", has_text="Password")).to_be_visible()
    shot(page, "#install", "admin-halo-install-by-hand")
    page.reload()
    expect(install.locator("#webhook-steps dt", has_text="Username")).to_be_visible()
    expect(install.locator("#webhook-steps dt", has_text="Password")).to_have_count(0)
    context.close()
    assert not problems, problems


def test_the_custom_tabs_signed_address_signs_the_agent_in(browser, halo_tenant):
    setup = halo_tenant
    operator = requests.Session()  # the connection holds the tab secret and reaches the agents
    operator.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    connected = operator.put(
        f"{setup['url']}/api/v1/admin/tenants/haloco/connection",
        json={"site": setup["server"].site("halopsa"), "client_id": SANDBOX_HALO_CLIENT_ID,
              "client_secret": SANDBOX_HALO_CLIENT_SECRET, "tab_secret": SANDBOX_HALO_TAB_SECRET},
    )  # fmt: skip
    assert connected.status_code == 200, connected.text
    sam = setup["agents"]["sseniorr"]
    proof = agent_signature(SANDBOX_HALO_TAB_SECRET, str(sam.id))
    problems: list[str] = []
    context = browser.new_context(viewport=TAB, base_url=setup["url"])
    page = watched(context.new_page(), problems)
    page.goto(f"/panel/?tenant=haloco&agent_id={sam.id}&hmac={requests.utils.quote(proof)}")
    page.wait_for_url("**/panel/?tenant=haloco")  # the proof left the address once used
    expect(page.locator("body")).to_contain_text("Sam Senior")

    forged = watched(browser.new_context(viewport=TAB, base_url=setup["url"]).new_page(), problems)
    forged.goto(f"/panel/?tenant=haloco&agent_id={sam.id}&hmac=AAAA")
    expect(forged.locator("#frame-status")).to_contain_text("could not sign you in")
    forged.context.close()
    context.close()
    assert not problems, problems
