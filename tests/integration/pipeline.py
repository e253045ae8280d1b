"""Helpers for end-to-end tests: run a real RQ worker, wait, read what the sandbox PSA saw."""

from __future__ import annotations

import threading
import time

from adapters.connectwise.sandbox.state import SANDBOX_PRIVATE_KEY, SANDBOX_PUBLIC_KEY
from adapters.sandbox import SandboxStore
from connector.queue import QUEUE_NAMES, AppWorker, ThreadWorker, queue


def run_worker(app, queue_names=QUEUE_NAMES) -> None:
    connection = app.extensions["baton"].redis
    AppWorker([queue(connection, n) for n in queue_names], connection=connection, app=app).work(
        burst=True, logging_level="WARNING"
    )


def start_worker_thread(app) -> threading.Thread:
    """The same burst in a thread, to watch a job while it runs (a ThreadWorker installs no
    signal handlers, which only the main thread may)."""
    connection = app.extensions["baton"].redis
    worker = ThreadWorker(
        [queue(connection, n) for n in QUEUE_NAMES], connection=connection, app=app
    )
    thread = threading.Thread(
        target=worker.work, kwargs={"burst": True, "logging_level": "WARNING"}
    )
    thread.start()
    return thread


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


def connect_sandbox_tenant(api, base_url: str, store: SandboxStore, server, slug: str = "acme"):
    """Over the admin API: a ConnectWise tenant on the sandbox PSA, its callback installed."""
    created = api.post(
        f"{base_url}/api/v1/admin/tenants",
        json={
            "slug": slug,
            "name": "Acme MSP",
            "vendor": "connectwise",
            "escalation_statuses": ["Escalated"],
        },
    )
    assert created.status_code == 201, created.text
    connected = api.put(
        f"{base_url}/api/v1/admin/tenants/{slug}/connection",
        json={
            "site": server.site("connectwise"),
            "company_id": "baton-sandbox",
            "public_key": SANDBOX_PUBLIC_KEY,
            "private_key": SANDBOX_PRIVATE_KEY,
            "client_id": "00000000-0000-4000-8000-000000000000",
        },
    )
    assert connected.status_code == 200, connected.text
    installed = api.post(f"{base_url}/api/v1/admin/tenants/{slug}/webhooks/install")
    assert installed.status_code == 200, installed.text
    return installed
