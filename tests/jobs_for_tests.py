"""Job functions used by tests (RQ imports jobs by dotted path)."""


def add(a: int, b: int) -> int:
    return a + b


def app_name() -> str:
    from flask import current_app

    return current_app.name
