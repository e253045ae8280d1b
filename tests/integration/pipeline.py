"""Helpers for end-to-end tests: run a real RQ worker, wait, read what the sandbox PSA saw."""

from __future__ import annotations

import time

from rq import SimpleWorker

from adapters.sandbox import SandboxStore
from connector.queue import QUEUE_NAMES, queue


def run_worker(app) -> None:
    connection = app.extensions["baton"].redis
    SimpleWorker([queue(connection, n) for n in QUEUE_NAMES], connection=connection).work(
        burst=True, logging_level="WARNING"
    )


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def baton_notes(store: SandboxStore, ticket_id: int):
    return [n for n in store.notes(ticket_id) if "[baton-handoff" in n.text]


def accepted(store: SandboxStore) -> list:
    return [d for d in store.deliveries if d.status == 202]


def escalation_ids(app) -> list[int]:
    from sqlalchemy import select

    from connector.db import session
    from connector.models import Escalation

    with app.app_context():
        return list(session.scalars(select(Escalation.id).order_by(Escalation.id)))


def audit_reasons(app) -> list[str]:
    from sqlalchemy import select

    from connector.db import session
    from connector.models import WebhookDelivery

    with app.app_context():
        return list(session.scalars(select(WebhookDelivery.reason).order_by(WebhookDelivery.id)))
