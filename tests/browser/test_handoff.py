"""The handoff screen in Chromium: pending to ready live, the deadline, fallback, steps, Conclude,
and the corpus's markup tickets shown as inert text."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import POD, screenshot, wait_for
from tests.fakes.handoffs import READY_PAYLOAD

pytestmark = pytest.mark.browser


def open_handoff(page: Page, escalation_id: int) -> None:
    page.goto(f"/panel/escalations/{escalation_id}")
    expect(page.locator("#handoff")).to_have_attribute("aria-busy", "false")


def pick_up(page: Page, escalation_id: int) -> None:
    page.goto("/panel/")
    page.locator(f'.row[data-id="{escalation_id}"] .pick').click()
    page.wait_for_url(f"**/panel/escalations/{escalation_id}")
    expect(page.locator("#claim-bar")).to_contain_text("You picked this up")


def test_pending_turns_into_the_fields_without_a_reload(panel):
    panel.fake.set_mode("answer", latency=3.0, payload=READY_PAYLOAD)
    page = panel.page("sam")
    escalation_id = panel.escalate(
        104512,
        member="kpatel",
        reason="New Outlook profile + cred clear didn't help. KV-LT-0231 shows Disabled in "
        "Entra since 2/5 and I don't have rights to re-enable devices.",
    )
    open_handoff(page, escalation_id)
    expect(page.locator("#pending")).to_be_visible()
    expect(page.locator("#pending-elapsed")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    page.evaluate("window.__loaded_once = true")
    screenshot(page, "handoff-pending")

    expect(page.locator("#fields")).to_be_visible(timeout=15000)
    expect(page.locator("#pending")).to_be_hidden()
    expect(page.locator("#likely-cause")).to_have_text(READY_PAYLOAD["likely_cause"])
    expect(page.locator("#confidence")).to_have_text("high confidence")
    expect(page.locator("#what-we-know li")).to_have_count(5)
    expect(page.locator("#tried .tried-action")).to_have_text(
        [item["action"] for item in READY_PAYLOAD["tried"]]
    )
    expect(page.locator("#tried .tried-result").first).to_have_text(
        READY_PAYLOAD["tried"][0]["result"]
    )
    expect(page.locator("#open-questions li")).to_have_text(READY_PAYLOAD["open_questions"])
    expect(page.locator("#steps .chip")).to_have_text(READY_PAYLOAD["suggested_steps"])
    expect(page.locator("#summary p")).to_have_count(2)
    expect(page.locator(".toast")).to_contain_text(["The handoff is ready."])
    assert page.evaluate("window.__loaded_once") is True

    pick_up(page, escalation_id)
    page.locator("#steps .chip").first.focus()  # focus ring visible, as a keyboard user sees it
    screenshot(page, "handoff-ready")
    pod = panel.page("dana", viewport=POD)
    open_handoff(pod, escalation_id)
    assert pod.evaluate("document.documentElement.scrollWidth") <= POD["width"]
    screenshot(pod, "handoff-pod")
    dark = panel.page("dana", viewport=POD, color_scheme="dark")
    open_handoff(dark, escalation_id)
    screenshot(dark, "handoff-dark")


def test_a_step_chip_copies_the_step_and_records_the_first_action(panel):
    panel.fake.set_mode("answer", payload=READY_PAYLOAD)
    escalation_id = panel.escalate(104512, member="kpatel")
    panel.wait_terminal(escalation_id)
    page = panel.page("sam")
    pick_up(page, escalation_id)
    before = panel.api("sam", f"/api/v1/escalations/{escalation_id}")
    assert before["claim"]["name"] == "Sam Senior" and before["first_action_at"] is None

    step = READY_PAYLOAD["suggested_steps"][1]
    page.get_by_role("button", name=f"Copy step: {step}").click()
    expect(page.locator(".chip.used")).to_have_text([step])
    assert page.evaluate("navigator.clipboard.readText()") == step

    def first_action():
        return panel.api("sam", f"/api/v1/escalations/{escalation_id}")["first_action_at"]

    wait_for(first_action, what="first_action_at")
    # Keyboard: Tab reaches the next chip and Enter uses it.
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".chip.used")).to_have_count(2)


def test_a_placeholder_never_outlives_the_deadline(panel):
    """No worker finishes this one: past deadline + margin the screen says so, then still turns
    into the fields when the handoff does arrive."""
    from adapters.base import TicketEvent
    from connector import escalations, summary
    from connector.db import session, utcnow
    from connector.models import Escalation, Tenant

    with panel.app.app_context():
        tenant = session.query(Tenant).filter_by(slug="acme").one()
        recorded = escalations.record(
            tenant,
            TicketEvent(
                ticket_id="106481",
                delivery_key="late-1",
                status="Escalated",
                actor="jreyes",
                title="Printer offline",
            ),
            reason="Worker is down in this test",
        )
        escalation_id = recorded.escalation.id
        row = session.get(Escalation, escalation_id)
        row.received_at = row.handoff.started_at = utcnow() - timedelta(seconds=8)
        session.commit()
        session.remove()

    page = panel.page("sam")
    open_handoff(page, escalation_id)
    expect(page.locator("#pending")).to_be_visible()
    # The test deadline is 5 s, the margin 10 s: the placeholder gives way at 15 s.
    expect(page.locator("#late")).to_contain_text("The handoff is late", timeout=12000)
    expect(page.locator("#pending")).to_be_hidden()

    with panel.app.app_context():
        row = session.get(Escalation, escalation_id)
        escalations.finish(
            row,
            summary.HandoffResult(
                source="fallback",
                summary_prose="Built from the ticket.",
                what_we_know=["The printer is offline"],
                likely_cause="Unknown without the AI",
                suggested_steps=["Check the printer's network cable"],
                confidence="low",
                model=None,
                failure_reason="the worker was down",
            ),
        )
        session.remove()
    expect(page.locator("#fields")).to_be_visible(timeout=10000)
    expect(page.locator("#late")).to_be_hidden()
    expect(page.locator("#fallback-note")).to_be_visible()


def test_a_fallback_says_the_ai_was_unavailable_and_regenerate_makes_a_new_one(panel):
    panel.fake.set_mode("bad_schema")
    escalation_id = panel.escalate(
        104512, member="kpatel", reason="KV-LT-0231 disabled in Entra; no rights to fix"
    )
    assert panel.wait_terminal(escalation_id) == "fallback"
    page = panel.page("sam")
    pick_up(page, escalation_id)
    note = page.locator("#fallback-note")
    expect(note).to_be_visible()
    expect(note.locator("h2")).to_have_text("The AI was unavailable")
    expect(page.locator("#confidence")).to_have_text("low confidence")
    expect(page.locator("#what-we-know li").first).to_be_visible()
    screenshot(page, "handoff-fallback")

    panel.fake.set_mode("answer", latency=2.0, payload=READY_PAYLOAD)
    page.locator("#regenerate").click()
    expect(page.locator("#pending")).to_be_visible()
    expect(page.locator("#likely-cause")).to_have_text(READY_PAYLOAD["likely_cause"], timeout=15000)
    expect(note).to_be_hidden()
    assert len(panel.fake.message_requests()) == 2


def test_conclude_copies_ticket_notes_and_shows_the_two_rewrites(panel):
    panel.fake.set_mode("answer", payload=READY_PAYLOAD)
    escalation_id = panel.escalate(104512, member="kpatel")
    panel.wait_terminal(escalation_id)
    page = panel.page("sam")
    pick_up(page, escalation_id)

    notes = panel.api("sam", f"/api/v1/escalations/{escalation_id}/variants/ticket_notes")
    page.get_by_role("button", name="Ticket notes").click()
    expect(page.locator(".toast")).to_contain_text(["Ticket notes copied."])
    assert page.evaluate("navigator.clipboard.readText()") == notes["text"]

    # The first client update is written now: a busy state while the small model answers.
    panel.fake.set_mode("answer", latency=1.5, text="Hello, we found why Outlook keeps asking.")
    page.get_by_role("button", name="Client update").click()
    expect(page.locator("#variant-busy")).to_be_visible()
    expect(page.locator("#variant")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#variant-text")).to_contain_text("we found why Outlook", timeout=15000)
    expect(page.locator("#variant-busy")).to_be_hidden()
    page.get_by_role("button", name="Copy", exact=True).click()
    assert "we found why Outlook" in page.evaluate("navigator.clipboard.readText()")

    post = page.get_by_role("button", name="Post to PSA")
    post.click()
    confirm = page.get_by_role("button", name="Confirm: the client will see it")
    expect(confirm).to_be_visible()
    page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
    screenshot(page, "handoff-conclude")
    confirm.click()
    expect(page.locator("#variant-post")).to_have_text("Posted")
    posted = [n for n in panel.store.notes(104512) if "we found why Outlook" in n.text]
    assert [n.detail for n in posted] == [True]  # one note, visible to the client

    panel.fake.set_mode("answer", text="Subject: Outlook password prompts\n\nHello Dana,\n\nFixed.")
    page.get_by_role("button", name="Email draft").click()
    expect(page.locator("#variant-subject")).to_have_text(
        "Subject: Outlook password prompts", timeout=15000
    )
    expect(page.locator("#variant-post")).to_be_hidden()  # an email draft is copied, not posted


MARKUP = {
    "tried": [
        {"action": "Opened <a href=javascript:alert(5)>the portal</a>", "result": "<b>ok</b>"}
    ],
    "open_questions": ["Who posted <svg onload=alert(6)>?"],
    "summary_prose": "The portal ran <script>alert('prose')</script> from an announcement.",
    "what_we_know": [
        "Announcement text: Welcome back! <script>alert(1)</script>",
        "Load #448213 notes hold <img src=x onerror=alert(document.cookie)>",
    ],
    "likely_cause": "Stored XSS: <img src=x onerror=alert('cause')> posted by tmpvendor",
    "suggested_steps": [
        "Disable the tmpvendor account <b onmouseover=alert(3)>now</b>",
        "Remove <iframe src=javascript:alert(4)></iframe> from load #448213",
    ],
    "confidence": "medium",
}


def test_the_corpus_markup_tickets_render_as_inert_text(panel):
    from tests.corpus import load_corpus

    rows = {row["id"]: row for row in load_corpus()}
    panel.fake.set_mode("answer", payload=MARKUP)
    xss = panel.escalate(116712, member="jreyes", reason=rows[116712]["escalation_reason"])
    panel.wait_terminal(xss)
    panel.fake.set_mode("bad_schema")  # the fallback shows what was extracted from the ticket
    onedrive = panel.escalate(112871, member="tnguyen", reason=rows[112871]["escalation_reason"])
    assert panel.wait_terminal(onedrive) == "fallback"

    page = panel.page("sam")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/panel/")
    for escalation_id in (xss, onedrive):
        row = page.locator(f'.row[data-id="{escalation_id}"]')
        row.locator("button", has_text="Preview").click()
        expect(row.locator(".preview")).to_be_visible()
    expect(page.locator(f'.row[data-id="{xss}"] .preview')).to_contain_text(
        "<img src=x onerror=alert('cause')>"
    )
    assert_inert(page)

    open_handoff(page, xss)
    expect(page.locator("#likely-cause")).to_have_text(MARKUP["likely_cause"])
    expect(page.locator("#summary")).to_contain_text("<script>alert('prose')</script>")
    expect(page.locator("#tried")).to_contain_text("Opened <a href=javascript:alert(5)>the portal")
    expect(page.locator("#open-questions")).to_have_text(MARKUP["open_questions"])
    expect(page.locator("#steps .chip")).to_have_text(MARKUP["suggested_steps"])
    assert_inert(page)
    screenshot(page, "handoff-markup")

    open_handoff(page, onedrive)
    expect(page.locator("#fields")).to_be_visible()
    expect(page.locator("#ticket-reason")).to_contain_text("<img src=x onerror=...>.png")
    assert_inert(page)
    page.wait_for_timeout(500)  # an onerror would have fired by now
    assert dialogs == []


def assert_inert(page: Page) -> None:
    for selector in (
        "main script",
        "main img",
        "main iframe",
        "main b",
        "[onerror]",
        "[onmouseover]",
        "main svg",
        "[onload]",
        "main a[href^=javascript]",
    ):
        assert page.locator(selector).count() == 0, f"{selector} was injected"


def test_the_screen_says_which_secrets_were_removed_before_the_ai_saw_the_ticket(panel):
    panel.fake.set_mode("answer", payload=READY_PAYLOAD)
    escalation_id = panel.escalate(99812, member="kpatel")  # two temporary passwords in notes
    panel.wait_terminal(escalation_id)
    page = panel.page("sam")
    open_handoff(page, escalation_id)
    note = page.locator("#redaction-note")
    expect(note).to_have_text("2 passwords removed before the AI saw this ticket.")
    clean = panel.escalate(104512, member="kpatel")  # no secret in it
    panel.wait_terminal(clean)
    open_handoff(page, clean)
    expect(page.locator("#fields")).to_be_visible()
    expect(note).to_be_hidden()


def test_seen_before_shows_what_fixed_it_last_time_and_a_senior_corrects_it(panel):
    from tests.integration.pipeline import repeat_of_104512

    panel.fake.set_mode("answer", payload=READY_PAYLOAD)
    first_id = panel.escalate(104512, member="kpatel", reason="KV-LT-0231 Disabled in Entra")
    panel.wait_terminal(first_id)
    fix = "Re-enabled KV-LT-0231 in Entra <img src=x onerror=alert(1)> and fixed the runbook"
    panel.store.resolve(104512, fix, member="sseniorr")

    def resolved():
        return panel.api("sam", f"/api/v1/escalations/{first_id}")["resolution"]

    assert wait_for(resolved, what="the resolution read from the PSA")["text"] == fix
    panel.store.add_ticket(repeat_of_104512(104999))
    second_id = panel.escalate(104999, member="kpatel", reason="Password prompts are back")
    panel.wait_terminal(second_id)

    page = panel.page("sam")
    pick_up(page, second_id)
    card = page.locator("#seen-before-card")
    expect(card).to_be_visible()
    expect(card.locator(".seen-item")).to_have_count(1)
    expect(card.locator(".seen-head")).to_contain_text("#104512")
    expect(card.locator(".seen-fix")).to_have_text(fix)  # the markup is text, never a tag
    expect(card.locator(".hint").nth(1)).to_contain_text("resolved by")
    assert_inert(page)
    screenshot(page, "handoff-seen-before")

    # What fixed this one: not known yet; the senior writes it, and it counts as an action.
    expect(page.locator("#fixed-text")).to_contain_text("Not recorded yet")
    page.locator("#fixed-input").fill("Re-enabled the device again; runbook now skips it")
    page.locator("#fixed-save").click()
    expect(page.locator("#fixed-text")).to_have_text(
        "Re-enabled the device again; runbook now skips it"
    )
    expect(page.locator("#fixed-meta")).to_contain_text("Written in Baton · Sam Senior")
    detail = panel.api("sam", f"/api/v1/escalations/{second_id}")
    assert detail["resolution"]["source"] == "panel"
    assert detail["first_action_at"] is not None
