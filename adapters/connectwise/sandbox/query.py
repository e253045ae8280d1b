"""ConnectWise list queries: the part of the `conditions` language that clients use."""

from __future__ import annotations

import re
from typing import Any

DEFAULT_PAGE_SIZE = 25  # what real ConnectWise returns when a client forgets pageSize
MAX_PAGE_SIZE = 1000

_CLAUSE = re.compile(
    r"""\s*(?P<field>[A-Za-z_][\w/]*)\s*
        (?P<op>!=|>=|<=|=|<|>|(?:not\s+)?(?:contains|like)\b)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[\w.:+-]+)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"and\s+", re.IGNORECASE)

Condition = tuple[str, str, Any]


def parse_conditions(text: str) -> list[Condition]:
    """`a/b = "x" and c contains "y" and id > 5` -> [(path, op, value), ...]. Raises ValueError."""
    conditions: list[Condition] = []
    pos = 0
    while text.strip():
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse conditions at {text[pos:]!r}")
        conditions.append((match["field"], " ".join(match["op"].lower().split()), _value(match)))
        pos = match.end()
        if pos == len(text):
            break
        joiner = _AND.match(text, pos)
        if joiner is None:
            raise ValueError(f"expected 'and' at {text[pos:]!r}")
        pos = joiner.end()
    return conditions


def _value(match: re.Match[str]) -> Any:
    raw = match["value"]
    if raw.startswith('"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if raw.startswith("["):
        return raw[1:-1]  # a date
    if raw.lower() in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[raw.lower()]
    try:
        return float(raw) if "." in raw else int(raw)
    except ValueError:
        return raw


def _lookup(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _holds(actual: Any, op: str, expected: Any) -> bool:
    if op.endswith(("contains", "like")):
        text, wanted = str(actual or "").lower(), str(expected).lower()
        if op.endswith("like"):
            pattern = ".*".join(re.escape(part) for part in wanted.split("%"))
            found = re.fullmatch(pattern, text, re.DOTALL) is not None
        else:
            found = wanted in text
        return found != op.startswith("not")
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    try:
        return {"<": actual < expected, ">": actual > expected,
                "<=": actual <= expected, ">=": actual >= expected}[op]  # fmt: skip
    except TypeError:
        return False


def matches(record: dict[str, Any], conditions: list[Condition]) -> bool:
    return all(_holds(_lookup(record, path), op, value) for path, op, value in conditions)
