"""The query filter language: {"op", "field", "value"} conditions and and/or groups."""

from __future__ import annotations

from typing import Any

from adapters.autotask.sandbox.errors import ATError


def _lookup(record: dict[str, Any], name: str) -> tuple[bool, Any]:
    for key, value in record.items():
        if key.lower() == name.lower():
            return True, value
    return False, None


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any]:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual, expected
    if isinstance(actual, int | float) and isinstance(expected, str):
        try:
            return actual, float(expected)
        except ValueError:
            return str(actual), expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower(), expected.lower()
    return actual, expected


def holds(record: dict[str, Any], condition: Any) -> bool:
    """One Autotask query condition: {"op", "field", "value"} or {"op": "and"|"or", "items"}."""
    if not isinstance(condition, dict):
        raise ATError(500, "Each filter must be an object with op, field and value.")
    c = {str(k).lower(): v for k, v in condition.items()}
    op = str(c.get("op") or "").lower()
    if op in ("and", "or"):
        items = c.get("items")
        if not isinstance(items, list) or not items:
            raise ATError(500, f"The '{op}' grouping needs items.")
        results = [holds(record, item) for item in items]
        return all(results) if op == "and" else any(results)
    name = str(c.get("field") or "")
    found, actual = _lookup(record, name)
    if not found:
        raise ATError(500, f"Unable to find {name or 'a field'} in the entity.")
    expected = c.get("value")
    if op == "exist":
        return actual not in (None, "")
    if op == "notexist":
        return actual in (None, "")
    if op in ("in", "notin"):
        if not isinstance(expected, list):
            raise ATError(500, f"The '{op}' operator needs a list of values.")
        inside = any(_comparable(actual, v)[0] == _comparable(actual, v)[1] for v in expected)
        return inside == (op == "in")
    if actual is None:
        return op == "noteq" and expected is not None
    a, e = _comparable(actual, expected)
    if op in ("contains", "beginswith", "endswith"):
        text, wanted = str(actual).lower(), str(expected).lower()
        return {"contains": wanted in text, "beginswith": text.startswith(wanted),
                "endswith": text.endswith(wanted)}[op]  # fmt: skip
    compare = {"eq": lambda: a == e, "noteq": lambda: a != e, "gt": lambda: a > e,
               "gte": lambda: a >= e, "lt": lambda: a < e, "lte": lambda: a <= e}  # fmt: skip
    if op not in compare:
        raise ATError(500, f"Unknown operator '{op}'.")
    try:
        return bool(compare[op]())
    except TypeError:
        return False
