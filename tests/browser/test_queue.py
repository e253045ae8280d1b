"""The queue in Chromium: live arrival without reload, the bell, pick-up races, roles."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import POD, TAB, listening, screenshot, wait_for

pytestmark = pytest.mark.browser


def test_a_webhook_escalation_arrives_live_and_the_bell_opens_the_pick_up(panel):
    page = panel.page("sam")
    expect(page.locator("#queue-empty")).to_be_visible()
    page.evaluate("window.__loaded_once = true")  # gone if the page reloads
    listening(page)

    escalation_id = panel.escalate(
        104512, member="kpatel", reason="Device shows Disabled in Entra; no rights to fix"
    )

    row = page.locator(f'.row[data-id="{escalation_id}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-arrived", "live")  # the highlight itself fades
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    expect(row.locator(".row-title")).to_have_text(
        "#104512 Outlook keeps asking for password - Dana Whitfield"
    )
    expect(row.locator(".dot")).to_have_attribute("aria-label", "Unread")
    expect(page.locator("#arrivals")).to_contain_text("New escalation: #104512")
    expect(page.locator("#bell-count")).to_have_text("1")
    assert page.evaluate("window.__loaded_once") is True

    # The handoff lands while we watch: the badge turns without a reload.
    expect(row.locator(".badge-ready")).to_be_visible(timeout=15000)
    row.get_by_role("button", name="Preview likely cause").click()
    expect(row.locator(".preview")).to_contain_text("Likely cause")

    page.locator("#bell").click()
    expect(page.locator("#bell-list")).to_be_visible()
    expect(page.locator("#bell-count")).to_be_hidden()
    page.locator(".bell-item").first.click()
    expect(row.get_by_role("button", name="Pick up")).to_be_focused()
    assert page.evaluate("window.__loaded_once") is True


def test_a_missed_event_is_repaired_on_reconnect(panel):
    page = panel.page("sam")
    expect(page.locator("#queue-empty")).to_be_visible()
    page.context.set_offline(True)
    # Events published while the stream is down are not replayed to this page...
    escalation_id = panel.escalate(105033, member="tnguyen")
    panel.wait_terminal(escalation_id)
    page.context.set_offline(False)
    # ...but the reconnect re-reads the queue, so the row shows with its final state.
    row = page.locator(f'.row[data-id="{escalation_id}"]')
    expect(row.locator(".badge-ready")).to_be_visible(timeout=20000)


def test_two_seniors_pick_up_at_once_one_wins_the_other_gets_the_toast(panel):
    escalation_id = panel.escalate(105390, member="bwalsh")
    panel.wait_terminal(escalation_id)
    sam, dana = panel.page("sam"), panel.page("dana")
    for page in (sam, dana):
        expect(page.locator(f'.row[data-id="{escalation_id}"] .pick')).to_be_visible()
    # Both clicks are dispatched before either answer comes back.
    for page in (sam, dana):
        page.evaluate("document.querySelector('.pick').click()")
    for page in (sam, dana):
        page.wait_for_url(f"**/panel/escalations/{escalation_id}")
        expect(page.locator("#claim-bar")).to_be_visible()

    winner = panel.api("sam", f"/api/v1/escalations/{escalation_id}")["claim"]["name"]
    won, lost = (sam, dana) if winner == "Sam Senior" else (dana, sam)
    expect(won.locator("#claim-bar")).to_have_text(re.compile(r"^You picked this up at"))
    expect(lost.locator(".toast")).to_have_text(f"Already picked up by {winner}")
    expect(lost.locator("#claim-bar")).to_contain_text(f"Picked up by {winner}")
    expect(lost.locator("#claim-bar")).to_contain_text("read-only")
    expect(lost.locator("#handoff")).to_have_class("handoff read-only")
    expect(won.locator(".toast")).to_have_count(0)
    screenshot(lost, "handoff-read-only")


def test_a_technician_sees_their_escalation_but_no_pick_up(panel):
    mine = panel.escalate(104512, member="kpatel", reason="Need Entra rights")
    theirs = panel.escalate(106102, member="aokafor")
    panel.wait_terminal(mine)
    panel.wait_terminal(theirs)
    page = panel.page("kiran")
    expect(page.locator(f'.row[data-id="{mine}"]')).to_be_visible()
    expect(page.locator(f'.row[data-id="{theirs}"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Pick up")).to_have_count(0)
    expect(page.locator("#metric-card")).to_be_hidden()  # analytics are for seniors
    page.locator(f'.row[data-id="{mine}"] .row-title').click()
    page.wait_for_url(f"**/panel/escalations/{mine}")
    expect(page.locator("#claim-bar")).to_have_text("Waiting for a senior to pick this up.")
    expect(page.locator("#fields")).to_be_visible()
    expect(page.get_by_role("button", name="Pick up")).to_have_count(0)
    expect(page.get_by_role("button", name="Post to PSA")).to_be_hidden()


def test_queue_screens_in_a_pod_a_tab_and_dark_mode(panel):
    first = panel.escalate(
        104512,
        member="kpatel",
        reason=(
            "New Outlook profile + cred clear didn't help. KV-LT-0231 shows Disabled in Entra; "
            "I don't have rights to re-enable devices."
        ),
    )
    panel.wait_terminal(first)
    claimed = panel.escalate(105390, member="bwalsh")
    panel.wait_terminal(claimed)
    seen = panel.escalate(107255, member="kpatel")
    panel.wait_terminal(seen)
    dana = panel.page("dana")
    expect(dana.locator(f'.row[data-id="{claimed}"] .pick')).to_be_visible()
    dana.locator(f'.row[data-id="{claimed}"] .pick').click()
    dana.wait_for_url(f"**/panel/escalations/{claimed}")
    requests.post(  # Sam has read this one: no unread dot
        f"{panel.url}/api/v1/escalations/{seen}/read",
        headers={"Authorization": f"Bearer {panel.members['sam']['token']}"},
        timeout=10,
    )

    pod = panel.page("sam", viewport=POD)
    pod.locator('.filter[data-state="all"]').click()
    row = pod.locator(f'.row[data-id="{first}"]')
    expect(row).to_be_visible()
    expect(pod.locator(".row")).to_have_count(3)
    row.get_by_role("button", name="Preview likely cause").click()
    expect(row.locator(".preview")).to_be_visible()
    # Nothing spills sideways in a 400-pixel pod.
    assert pod.evaluate("document.documentElement.scrollWidth") <= POD["width"]
    screenshot(pod, "queue-pod")

    tab = panel.page("sam", viewport=TAB)
    tab.locator('.filter[data-state="all"]').click()
    expect(tab.locator(".row")).to_have_count(3)
    listening(tab)
    late = panel.escalate(108044, member="tnguyen")
    expect(tab.locator(f'.row[data-id="{late}"]')).to_be_visible()
    expect(tab.locator("#bell-count")).to_have_text("1")
    tab.locator("#bell").click()
    expect(tab.locator(".bell-item")).to_have_count(1)
    screenshot(tab, "queue-tab")

    dark = panel.page("sam", viewport=POD, color_scheme="dark")
    expect(dark.locator(".row")).to_have_count(3)
    wait_for(lambda: panel.handoff_state(late) != "pending", what="the late handoff")
    screenshot(dark, "queue-dark")
