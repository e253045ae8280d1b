"""Job functions used by tests (RQ imports jobs by dotted path)."""


def add(a: int, b: int) -> int:
    return a + b


def app_name() -> str:
    from flask import current_app

    return current_app.name


def record(key: str, value: str) -> None:
    """Append `value` to a Redis list: the order in which a worker ran the jobs."""
    from rq import get_current_job

    get_current_job().connection.rpush(key, value)  # type: ignore[union-attr]
