"""The handoff fills while the model writes it, in Chromium: the fake writes slowly, and the
screen shows what was tried and the likely cause long before it has finished, field after
field, from one call; the queue card says "Writing…". A handoff the ticket has moved past says
how many notes came since, and Regenerate makes one new call."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, wait_for
from tests.browser.test_handoff import open_handoff
from tests.fakes.handoffs import READY_PAYLOAD

pytestmark = pytest.mark.browser

# Each section's data-state, as the page sets it, with the moment and whether the screen still
# said the model was writing: recorded in the page, so no change is missed between two polls.
WATCH = """
window.__appeared = [];
let render = 0;
new MutationObserver((changes) => {
  render += 1;
  for (const change of changes) {
    const section = change.target;
    if (section.dataset.state === "written" && change.oldValue !== "written") {
      window.__appeared.push({
        field: section.dataset.field,
        render,
        at: performance.now(),
        writing: !document.getElementById("writing").hidden,
      });
    }
  }
}).observe(document, { subtree: true, attributeFilter: ["data-state"], attributeOldValue: true });
"""
WRITE_ORDER = [  # the schema's order, on the screen's cards
    "tried",
    "likely_cause",
    "what_we_know",
    "suggested_steps",
    "open_questions",
    "summary_prose",
]


def test_the_fields_appear_one_by_one_while_the_model_writes(panel):
    runtime = panel.app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(ai_deadline_seconds=60)
    # About 400 output tokens at 30 a second: some thirteen seconds of writing.
    panel.fake.set_mode("answer", payload=READY_PAYLOAD, ttft=1.0, pace=30)
    queue = panel.page("dana")
    queue.goto("/panel/")
    page = panel.page("sam")
    page.add_init_script(WATCH)
    escalation_id = panel.escalate(104512, member="kpatel")
    open_handoff(page, escalation_id)

    expect(page.locator("#writing")).to_be_visible(timeout=15000)
    expect(page.locator("#tried .tried-action").first).to_have_text(
        READY_PAYLOAD["tried"][0]["action"]
    )
    expect(page.locator('[data-field="summary_prose"]')).to_have_attribute("data-state", "waiting")
    expect(page.locator("#conclude")).to_be_hidden()  # the variants wait for the whole answer
    row = queue.locator(f'.row[data-id="{escalation_id}"]')
    expect(row.locator(".badge-writing")).to_have_text("Writing…")
    expect(page.locator("#likely-cause")).to_have_text(READY_PAYLOAD["likely_cause"])
    expect(page.locator("#writing")).to_be_visible()  # the model has not finished
    assert panel.handoff_state(escalation_id) == "pending"
    screenshot(page, "handoff-writing")

    expect(page.locator("#writing")).to_be_hidden(timeout=40000)
    expect(page.locator(".toast")).to_contain_text(["The handoff is ready."])
    expect(page.locator("#summary p")).to_have_count(2)
    expect(page.locator("#conclude")).to_be_visible()
    expect(row.locator(".badge-ready")).to_have_text("Ready")
    appeared = {seen["field"]: seen for seen in page.evaluate("window.__appeared")}
    assert sorted(appeared) == sorted(WRITE_ORDER)
    # In the order the model wrote them, one render after another (two may share one), and
    # every one of them while the screen still said the model was writing.
    renders = [appeared[field]["render"] for field in WRITE_ORDER]
    assert renders == sorted(renders) and len(set(renders)) >= 4, renders
    assert all(seen["writing"] for seen in appeared.values())
    # The cause follows the whole tried list; the prose comes seconds after the cause.
    assert appeared["likely_cause"]["at"] - appeared["tried"]["at"] > 1000  # ms
    assert appeared["summary_prose"]["at"] - appeared["likely_cause"]["at"] > 3000
    assert len(panel.fake.message_requests()) == 1


def test_new_notes_since_the_handoff_are_shown_with_regenerate(panel):
    panel.fake.set_mode("answer", payload=READY_PAYLOAD)
    escalation_id = panel.escalate(104512, member="kpatel")
    panel.wait_terminal(escalation_id)
    page = panel.page("sam")
    open_handoff(page, escalation_id)
    expect(page.locator("#stale")).to_be_hidden()

    for text in ("Dana rebooted, still prompting", "Asked the client's IT about the runbook"):
        panel.store.add_note(104512, text, author="kpatel", internal=True)
    panel.store.add_note(104512, "It's still asking!", author="dwhitfield@example.com")
    stale = page.locator("#stale")
    expect(stale.locator("h2")).to_have_text("3 new notes since this handoff", timeout=20000)
    expect(stale.get_by_role("button", name="Regenerate")).to_be_visible()
    queue = panel.page("dana")
    queue.goto("/panel/")
    expect(queue.locator(f'.row[data-id="{escalation_id}"] .badge-stale')).to_have_text(
        "3 new notes"
    )
    viewer = panel.page("kiran")  # a technician sees it, but regenerating is a senior's call
    open_handoff(viewer, escalation_id)
    expect(viewer.locator("#stale-hint")).to_contain_text("A senior can regenerate")
    expect(viewer.locator("#regenerate-stale")).to_be_hidden()
    assert len(panel.fake.message_requests()) == 1  # counting notes calls no model

    stale.get_by_role("button", name="Regenerate").click()
    expect(page.locator("#likely-cause")).to_have_text(READY_PAYLOAD["likely_cause"], timeout=20000)
    expect(stale).to_be_hidden()
    wait_for(lambda: panel.handoff_state(escalation_id) == "ready", what="the new handoff")
    requests = panel.fake.message_requests()
    assert len(requests) == 2 and re.search("Asked the client's IT", requests[-1].raw)
