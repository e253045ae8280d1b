"""Scores redact() on the evaluation set: recall on secrets, facts kept, per kind and language."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from connector.redaction import redact
from tests.redaction.eval_set import Line, leaked, load_eval_lines


@dataclass
class Tally:
    passed: int = 0
    total: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, ok: bool, line_id: str) -> None:
        self.passed += ok
        self.total += 1
        if not ok:
            self.failed.append(line_id)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0


def passes(line: Line) -> bool:
    """A secret must not survive, whole or in part; a fact line must come through unchanged."""
    out = redact(line.text).text
    return not leaked(line, out) if line.label == "secret" else out == line.text


def score(
    lines: Iterable[Line] | None = None, key: Callable[[Line], str] = lambda line: "all"
) -> dict[tuple[str, str], Tally]:
    """{(label, key(line)): Tally}; label is "secret" (recall) or "fact" (facts kept)."""
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for line in load_eval_lines() if lines is None else lines:
        tallies[(line.label, key(line))].add(passes(line), line.id)
    return dict(tallies)
