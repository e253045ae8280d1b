"""A tenant's own never-send terms (literal, any case) and patterns (regular expressions).

Patterns are RE2: matching takes time linear in the text whatever the pattern, so a hostile or
careless pattern cannot stall the pipeline (the `regex` module's timeout would instead give up
mid-text, and then either a secret goes or the handoff fails). RE2 has no look-around or
back-references; a pattern that needs them is refused with RE2's reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import re2

from connector.redaction.engine import Finding

KIND = "never_send"
MAX_ENTRIES = 50  # terms and patterns together, per tenant
MAX_PATTERN_CHARS = 200
MIN_TERM_CHARS, MAX_TERM_CHARS = 3, 200
_MEMORY = 8 << 20  # RE2's budget for all of a tenant's patterns together


class RuleError(ValueError):
    """Why a term or pattern is refused, in words fit for the admin who wrote it."""


def _options(memory: int) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would write the pattern to stderr: it is tenant config
    options.max_mem = memory
    return options


def check_term(term: str) -> None:
    if not MIN_TERM_CHARS <= len(term.strip()) <= MAX_TERM_CHARS:
        raise RuleError(f"a term has {MIN_TERM_CHARS} to {MAX_TERM_CHARS} characters")


def check_pattern(pattern: str) -> None:
    if not 1 <= len(pattern) <= MAX_PATTERN_CHARS:
        raise RuleError(f"a pattern has 1 to {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re2.compile(pattern, _options(_MEMORY // 8))
    except re2.error as exc:
        raise RuleError(f"not a valid pattern: {_reason(exc)}") from None
    if compiled.search("") is not None:
        raise RuleError("the pattern matches empty text; it must match at least one character")


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "invalid"
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


@dataclass(frozen=True)
class TenantRules:
    """Compiled terms and patterns; find() reports what they match, kind `never_send`."""

    regex: re2._Regexp

    def find(self, text: str, rank: int) -> Iterator[Finding]:
        for match in self.regex.finditer(text):
            if match.end() > match.start():
                yield Finding(match.start(), match.end(), KIND, rank)


@lru_cache(maxsize=256)
def _compiled(terms: tuple[str, ...], patterns: tuple[str, ...]) -> TenantRules | None:
    parts = [f"(?i:{re2.escape(t.strip())})" for t in terms] + [f"(?:{p})" for p in patterns]
    if not parts:
        return None
    try:
        return TenantRules(re2.compile("|".join(parts), _options(_MEMORY)))
    except re2.error as exc:
        raise RuleError(f"the patterns together are too large: {_reason(exc)}") from None


def compile_rules(terms: Sequence[str], patterns: Sequence[str]) -> TenantRules | None:
    """One RE2 alternation of everything (None when the tenant has nothing); checked values
    only. Raises RuleError when even checked patterns do not fit together."""
    return _compiled(tuple(terms), tuple(patterns))
