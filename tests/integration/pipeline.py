"""Helpers for end-to-end tests: run a real RQ worker, wait, read what the sandbox PSA saw."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from adapters.autotask.sandbox import zone_url
from adapters.autotask.sandbox.render import STATUS_IDS as AT_STATUS_IDS
from adapters.autotask.sandbox.state import (
    SANDBOX_AUTOTASK_INTEGRATION_CODE,
    SANDBOX_AUTOTASK_SECRET,
    SANDBOX_AUTOTASK_USERNAME,
    sandbox_webhooks,
)
from adapters.connectwise.sandbox.state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_COMPANY,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
)
from adapters.halopsa.sandbox.render import STATUS_IDS as HALO_STATUS_IDS
from adapters.halopsa.sandbox.state import (
    SANDBOX_HALO_CLIENT_ID,
    SANDBOX_HALO_CLIENT_SECRET,
    SANDBOX_HALO_TAB_SECRET,
    halo_state,
)
from adapters.halopsa.webhook import basic_credentials
from adapters.sandbox import SandboxServer, SandboxStore
from adapters.sandbox.store import Delivery
from connector.queue import QUEUE_NAMES, AppWorker, ThreadWorker, queue
from tests.corpus import load_corpus


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

    from connector import delivery_audit
    from connector.db import session
    from connector.models import WebhookDelivery

    with app.app_context():
        delivery_audit.flush(app.extensions["baton"].redis)  # the rows still queued in Redis
        order = (WebhookDelivery.received_at, WebhookDelivery.id)
        return list(session.scalars(select(WebhookDelivery.reason).order_by(*order)))


def connect_sandbox_tenant(api, base_url: str, store: SandboxStore, server, slug: str = "acme"):
    """Over the admin API: a ConnectWise tenant on the sandbox PSA, its callback installed."""
    return connect_vendor_tenant(api, base_url, server, KITS["connectwise"], slug)


# --- one kit per PSA: what the parametrised pipeline suite needs to know of each ----------------


@dataclass(frozen=True)
class VendorKit:
    key: str
    # the sandbox dialect's connection, as an admin types it over the API
    connection: Callable[[SandboxServer], dict[str, str]]
    # "Escalated" as the vendor's webhooks carry it: a name, or the id it was resolved to
    trigger_ids: dict[str, str] | None
    registered: Callable[[SandboxStore], int]  # Baton's webhooks registered in the sandbox
    # how many "Escalated" needs: ConnectWise has one callback per board holding the status
    expected_webhooks: Callable[[SandboxStore], int]
    member_id: Callable[[SandboxStore, str], str]  # how the vendor names a sandbox member
    # a genuine delivery with its credential or signature broken, vendor by vendor
    forgeries: Callable[[Delivery], list[tuple[bytes, dict[str, str]]]]
    auth_headers: tuple[str, ...]  # what proves a delivery; without them it is refused


def _cw_forgeries(genuine: Delivery) -> list[tuple[bytes, dict[str, str]]]:
    signature = genuine.headers["x-content-signature"]
    body = json.loads(genuine.body)
    body["MessageId"] = "attacker-1"
    body["Metadata"]["key_url"] = "https://attacker.example/key"
    return [
        (genuine.body, {**genuine.headers, "x-content-signature": "AAAA" + signature[4:]}),
        (json.dumps(body).encode(), genuine.headers),  # a key_url of the attacker's choosing
    ]


def _at_forgeries(genuine: Delivery) -> list[tuple[bytes, dict[str, str]]]:
    return [(genuine.body, {**genuine.headers, "X-Hook-Signature": "sha1=" + "A" * 27 + "="})]


def _halo_forgeries(genuine: Delivery) -> list[tuple[bytes, dict[str, str]]]:
    guesses = [basic_credentials("baton", "password"), basic_credentials("admin", "x" * 40),
               basic_credentials("baton", ""), "Bearer " + "x" * 40]  # fmt: skip
    return [(genuine.body, {**genuine.headers, "Authorization": g}) for g in guesses]


def _member_number(store: SandboxStore, identifier: str) -> str:
    member = store.member(identifier)
    assert member is not None
    return str(member.id)


KITS = {
    "connectwise": VendorKit(
        key="connectwise",
        connection=lambda server: {
            "site": server.site("connectwise"),
            "company_id": SANDBOX_COMPANY,
            "public_key": SANDBOX_PUBLIC_KEY,
            "private_key": SANDBOX_PRIVATE_KEY,
            "client_id": SANDBOX_CLIENT_ID,
        },
        trigger_ids=None,
        registered=lambda store: len(connectwise_state(store).callbacks()),
        expected_webhooks=lambda store: len(store.boards()),  # every board has "Escalated"
        member_id=lambda store, identifier: identifier,
        forgeries=_cw_forgeries,
        auth_headers=("x-content-signature",),
    ),
    "autotask": VendorKit(
        key="autotask",
        connection=lambda server: {
            "username": SANDBOX_AUTOTASK_USERNAME,
            "secret": SANDBOX_AUTOTASK_SECRET,
            "integration_code": SANDBOX_AUTOTASK_INTEGRATION_CODE,
            "zone_url": zone_url(server.site("autotask")),
        },
        trigger_ids={"Escalated": str(AT_STATUS_IDS["Escalated"])},  # the picklist id
        registered=lambda store: len(sandbox_webhooks(store)),
        expected_webhooks=lambda store: 1,
        member_id=_member_number,
        forgeries=_at_forgeries,
        auth_headers=("X-Hook-Signature",),
    ),
    "halopsa": VendorKit(
        key="halopsa",
        connection=lambda server: {
            "site": server.site("halopsa"),
            "client_id": SANDBOX_HALO_CLIENT_ID,
            "client_secret": SANDBOX_HALO_CLIENT_SECRET,
            "tab_secret": SANDBOX_HALO_TAB_SECRET,
        },
        trigger_ids={"Escalated": str(HALO_STATUS_IDS["Escalated"])},  # the status id
        registered=lambda store: len(halo_state(store).webhooks),
        expected_webhooks=lambda store: 1,
        member_id=_member_number,
        forgeries=_halo_forgeries,
        auth_headers=("Authorization",),
    ),
}


def connect_vendor_tenant(
    api: requests.Session, base_url: str, server: SandboxServer, kit: VendorKit, slug: str
) -> requests.Response:
    """Over the admin API: a tenant of the kit's vendor on the sandbox, its webhook installed
    (twice: the second finds the first)."""
    created = api.post(
        f"{base_url}/api/v1/admin/tenants",
        json={"slug": slug, "name": "Acme MSP", "vendor": kit.key,
              "escalation_statuses": ["Escalated"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    connected = api.put(f"{base_url}/api/v1/admin/tenants/{slug}/connection",
                        json=kit.connection(server))  # fmt: skip
    assert connected.status_code == 200, connected.text
    installed = api.post(f"{base_url}/api/v1/admin/tenants/{slug}/webhooks/install")
    assert installed.status_code == 200, installed.text
    again = api.post(f"{base_url}/api/v1/admin/tenants/{slug}/webhooks/install")
    assert again.status_code == 200 and again.json()["created"] is False, again.text
    return installed


# --- seen before ---------------------------------------------------------------------------


def repeat_of_104512(ticket_id: int) -> dict:
    """The same laptop of the same client failing the same way again, in other words."""
    [row] = [r for r in load_corpus() if r["id"] == 104512]
    return {
        **row,
        "id": ticket_id,
        "summary": "Outlook password prompts again on Dana's laptop",
        "description": "Outlook asks for my password over and over again since this morning.",
        "created": "2024-05-14T09:00:00Z",
        "notes": [
            {
                "id": 990001,
                "author": "kpatel",
                "created": "2024-05-14T09:20:00Z",
                "text": "Password prompts back. dsregcmd: DeviceAuthStatus FAILED.",
                "internal": True,
            }
        ],
        "time_entries": [],
    }
