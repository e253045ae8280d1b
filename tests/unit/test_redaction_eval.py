"""The evaluation set's thresholds: a rule change that loses recall or eats facts fails here."""

from __future__ import annotations

from collections import Counter

from tests.redaction.eval_set import load_eval_lines
from tests.redaction.scoring import score

RECALL, FACTS_KEPT = 0.99, 0.99


def test_the_set_is_large_varied_and_labelled() -> None:
    lines = load_eval_lines()
    assert len(lines) >= 300
    assert len({line.id for line in lines}) == len(lines)
    assert set(Counter(line.lang for line in lines)) == {"en", "de", "es", "fr", "nl", "pt", "it"}
    assert {line.split for line in lines} == {"tune", "held_out"}
    for line in lines:
        assert line.label in ("secret", "fact")
        assert line.value in line.text and "<<" not in line.text, line.id


def test_recall_and_facts_kept_meet_their_targets() -> None:
    tallies = score()
    recall, kept = tallies[("secret", "all")], tallies[("fact", "all")]
    assert recall.rate >= RECALL, f"secrets that survived: {recall.failed}"
    assert kept.rate >= FACTS_KEPT, f"facts that were redacted: {kept.failed}"


def test_the_held_out_part_meets_the_targets_too() -> None:
    tallies = score(key=lambda line: line.split)
    assert tallies[("secret", "held_out")].rate >= 0.98  # 57 of 58 at the last run
    assert tallies[("fact", "held_out")].rate >= FACTS_KEPT
