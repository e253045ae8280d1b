"""The parts every layer shares: a finding, rules found by their start words, and rendering.

A layer reports findings: a span of the text, its kind, its rank (the earlier layer or rule
names the kind when two findings overlap) and whether a credential word claimed it. Overlapping
findings are merged into one span, so a secret two rules each see in part goes whole.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import re2

MARKER = "[redacted: {kind}]"
MARKERS = re.compile(r"\[redacted: \w+\]")


@dataclass(frozen=True)
class Redacted:
    text: str
    kinds: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str
    rank: int
    # False when only the neighbourhood suggests a secret: then a shape the keep pass shields
    # (a host name, a KB number, a hash...) is not taken.
    claimed: bool = True


# --- rules found by their start words --------------------------------------------------
# Each rule lists the words a secret of its kind starts with. One RE2 scan of the text finds
# every place any of them starts (Python's `re` scans slowly for case-insensitive alternations);
# a rule's pattern is only tried where one of its own words starts.


@dataclass(frozen=True)
class Rule:
    kind: str
    starts: tuple[str, ...]  # lower-case words; "0" stands for a run of digits
    pattern: re.Pattern[str]  # tried with .match() at each start
    accept: Callable[[re.Match[str]], bool] = lambda match: True


class Scan:
    """One text prepared for RE2, which works on UTF-8 bytes: spans come back as str indices."""

    def __init__(self, text: str):
        self.text = text
        self.data = text.encode()
        self._bytes: list[int] = []  # byte offset just past each non-ASCII character
        self._extra: list[int] = []  # bytes beyond one per character, up to there
        if len(self.data) != len(text):
            extra = 0
            for hit in _NON_ASCII.finditer(text):
                extra += len(hit.group().encode()) - 1
                self._bytes.append(hit.start() + extra + 1)
                self._extra.append(extra)

    def index(self, offset: int) -> int:
        """The str index of a byte offset (one at a character boundary)."""
        i = bisect.bisect_right(self._bytes, offset) - 1
        return offset - (self._extra[i] if i >= 0 else 0)

    def finditer(self, regex: re2._Regexp) -> Iterator[re2._Match]:
        return regex.finditer(self.data)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class RuleSet:
    """Rules in priority order, with the one scan that finds where any of their words starts."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = tuple(rules)
        words = sorted({w for r in rules for w in r.starts if w != "0"}, key=len, reverse=True)
        alternatives = "|".join(re2.escape(w) for w in words)
        # After a non-letter (identifiers count: CF_API_TOKEN); or 13+ digits, spaced or not
        # (a card number or BitLocker key). Longest word first: the rules of every word that
        # begins the matched one are tried there.
        # No capture groups: RE2 then finds each hit with its DFA alone, several times faster.
        self.scan = re2.compile(rf"(?i)(?:^|[^\pL\pN])(?:{alternatives})|\b\d{{4}}(?:[ -]?\d){{9}}")
        self.by_word = {
            w: tuple(i for i, r in enumerate(rules) if w.startswith(r.starts)) for w in words
        }
        self.digits = tuple(i for i, r in enumerate(rules) if r.starts == ("0",))

    def find(self, scan: Scan, rank: int) -> Iterator[Finding]:
        text = scan.text
        done = [0] * len(self.rules)
        for hit in scan.finditer(self.scan):
            start = scan.index(hit.start())
            word = hit.group().decode().lower()
            if word in self.by_word:  # at the start of the text
                tried = self.by_word[word]
            elif word[1:] in self.by_word:  # after the character that bounds it
                start, tried = start + 1, self.by_word[word[1:]]
            else:
                tried = self.digits
            for i in tried:
                if start < done[i]:
                    continue
                rule = self.rules[i]
                match = rule.pattern.match(text, start)
                if match is not None and rule.accept(match):
                    begin, end, claimed = _value_span(match)
                    if end > begin:
                        yield Finding(begin, end, rule.kind, rank + i, claimed)
                    done[i] = match.end()


def _value_span(match: re.Match[str]) -> tuple[int, int, bool]:
    """The value group that matched, and whether it was claimed: groups named f<n> are values
    found past filler words; every other group (v<n>) sits right after its keyword."""
    for name, index in match.re.groupindex.items():
        if match.group(index) is not None and name[0] in "vf":
            return (*match.span(index), name[0] == "v")
    return (*match.span(), True)


# --- spans ------------------------------------------------------------------------------


def union(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint spans covering the same characters."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def overlaps(disjoint: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_right(disjoint, (start, float("inf")))
    return (i > 0 and disjoint[i - 1][1] > start) or (i < len(disjoint) and disjoint[i][0] < end)


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping findings as one, named by the best-ranked of them."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, f.rank)):
        if out and f.start < out[-1].end:
            last = out[-1]
            best = last if last.rank <= f.rank else f
            out[-1] = Finding(last.start, max(last.end, f.end), best.kind, best.rank)
        else:
            out.append(f)
    return out


def render(text: str, findings: list[Finding]) -> tuple[str, Counter[str]]:
    kinds: Counter[str] = Counter()
    out: list[str] = []
    last = 0
    for f in findings:
        out.append(text[last : f.start])
        out.append(MARKER.format(kind=f.kind))
        kinds[f.kind] += 1
        last = f.end
    out.append(text[last:])
    return "".join(out), kinds
