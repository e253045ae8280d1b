"""The handoff as it is written: partial JSON to the fields that can be shown, saved at a
bounded rate; and the fallback's "what was tried", built from the snapshot without AI."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from connector import summary
from connector.context import build_source
from connector.summary import PartialFields, fallback, shown_fields, whole_sentences
from tests.corpus import corpus_context, load_corpus

ANSWER = {
    "tried": [
        {"action": "Cleared cached credentials", "result": "prompt came back"},
        {"action": "New Outlook profile", "result": ""},
    ],
    "likely_cause": "The device is disabled in Entra.",
    "confidence": "high",
    "what_we_know": ["OWA works", "dsregcmd: FAILED"],
    "suggested_steps": ["Re-enable the device"],
    "open_questions": ["Will the runbook disable it again?"],
    "summary_prose": "Outlook prompts every 10 minutes. The device is disabled. Re-enable it",
}
TEXT = json.dumps(ANSWER)


def test_only_complete_fields_items_and_sentences_are_shown() -> None:
    stages = []
    for end in range(len(TEXT) + 1):
        fields = shown_fields(TEXT[:end])
        if not stages or fields != stages[-1]:
            stages.append(fields)
    assert stages[0] == {}
    assert stages[1] == {"tried": ANSWER["tried"][:1]}  # an item, once it is whole
    assert stages[2] == {"tried": ANSWER["tried"]}
    assert stages[3] == {"tried": ANSWER["tried"], "likely_cause": ANSWER["likely_cause"]}
    assert "confidence" in stages[4]  # "med" would not be a confidence: shown only when whole
    proses = [s["summary_prose"] for s in stages if "summary_prose" in s]
    assert proses == [
        "Outlook prompts every 10 minutes.",
        "Outlook prompts every 10 minutes. The device is disabled.",
        ANSWER["summary_prose"],
    ]
    assert stages[-1] == ANSWER
    # Every stage is a prefix of the next: nothing shown is ever taken back.
    for before, after in pairwise(stages):
        assert set(before) <= set(after)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        '["a list"]',
        '{"confidence": "extreme", "likely_cause": ',  # invalid values are not shown
        '{"what_we_know": [1, 2], "tried": [{"action": 3}], "unknown": "x"}',
    ],
)
def test_nothing_invalid_is_shown(text: str) -> None:
    assert shown_fields(text) == {}


def test_a_list_over_its_limit_is_not_shown() -> None:
    too_many = json.dumps({"open_questions": ["q"] * 4, "likely_cause": "x"})
    assert shown_fields(too_many) == {"likely_cause": "x"}


def test_text_is_stripped_and_empty_items_dropped() -> None:
    text = json.dumps({"what_we_know": ["  a ", " "], "tried": [{"action": " ", "result": "r"}]})
    assert shown_fields(text) == {"what_we_know": ["a"]}


def test_whole_sentences() -> None:
    assert whole_sentences("Version 3.5 failed. Then it") == "Version 3.5 failed."
    assert whole_sentences('He said "stop." Next') == 'He said "stop."'
    assert whole_sentences("A line\nand more") == "A line"
    assert whole_sentences("No end yet") == ""


def test_partial_fields_are_saved_at_a_bounded_rate(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(summary.time, "monotonic", lambda: now[0])
    saved: list[dict] = []
    partial = PartialFields(saved.append)
    for end in range(len(TEXT) + 1):  # the whole answer arrives within 0.1 s
        now[0] += 0.1 / len(TEXT)
        partial(TEXT[:end])
    assert len(saved) == 1 and saved[0] == {"tried": ANSWER["tried"][:1]}  # the first at once
    assert partial(TEXT) is True
    now[0] += summary.SAVE_EVERY_SECONDS
    partial(TEXT)  # the reader's next tick
    assert saved[-1] == ANSWER and len(saved) == 2
    partial(TEXT)
    assert len(saved) == 2  # nothing new, nothing saved


def test_flush_saves_what_is_new_at_once() -> None:
    saved: list[dict] = []
    partial = PartialFields(saved.append)
    assert partial('{"likely_cause": "x", "confidence": "low"') is True
    partial('{"likely_cause": "x", "confidence": "low", "what_we_know": ["a"]')
    assert len(saved) == 1
    partial.flush()
    assert saved[-1]["what_we_know"] == ["a"] and len(saved) == 2


def test_nothing_shown_until_a_field_is_complete() -> None:
    saved: list[dict] = []
    assert PartialFields(saved.append)('{"tried": [{"action": "a", "resu') is False
    assert saved == []


def test_the_fallback_lists_what_was_tried_from_notes_and_time_entries() -> None:
    row = next(r for r in load_corpus() if r["id"] == 104512)
    snapshot = build_source(corpus_context(row), reason=row["escalation_reason"]).snapshot
    assert snapshot["work_log"][0]["notes"].startswith("Remote session: cleared cached creds")
    assert snapshot["note_ids"] == [str(note["id"]) for note in row["notes"]]  # every note read
    result = fallback(snapshot, "AI unavailable: test")
    actions = [item["action"] for item in result.tried]
    assert len(actions) == 8 and all(item["result"] == "" for item in result.tried)
    assert any(a.startswith("dsregcmd review, Entra device audit") for a in actions)
    assert any(a.startswith("Tried BrokerPlugin reset") for a in actions)
    # Only the technicians' own notes count as tried; the client's reply is a fact.
    facts = " ".join(result.what_we_know)
    assert "organization has disabled this device" in facts
    assert not any("disabled this device" in a for a in actions)


def test_an_old_snapshot_without_a_work_log_still_falls_back() -> None:
    snapshot = {
        "ticket": {"title": "Printer"},
        "reason": "Offline",
        "notes": [{"text": "Power-cycled it", "internal": True, "author": "kp"}],
    }
    result = fallback(snapshot, "AI unavailable: test")
    assert result.tried == [{"action": "Power-cycled it", "result": ""}]
    assert result.state == "fallback" and result.confidence == "low"
