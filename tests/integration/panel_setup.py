"""What the panel's tests share: tenants and members made over the admin API, escalations
recorded through the pipeline's own record(), a sandbox PSA, a worker, an SSE reader."""

from __future__ import annotations

import queue as queue_mod
import threading
import time
from typing import Any

import pytest
import requests

from adapters.base import TicketEvent
from adapters.connectwise.sandbox.state import SANDBOX_PRIVATE_KEY, SANDBOX_PUBLIC_KEY
from adapters.sandbox import SandboxStore, serve_sandbox
from tests.integration.pipeline import run_worker, wait_for  # noqa: F401 (re-exported)


@pytest.fixture
def sandbox():
    store = SandboxStore()
    server = serve_sandbox(store)
    yield store, server
    server.stop()


def make_tenant(http: Any, admin_headers: dict[str, str], slug: str, base: str = "") -> None:
    """`http` is a Flask test client (base "") or requests (base = the live server's URL)."""
    answer = http.post(
        f"{base}/api/v1/admin/tenants",
        json={
            "slug": slug,
            "name": f"{slug.title()} MSP",
            "vendor": "connectwise",
            "escalation_statuses": ["Escalated"],
        },
        headers=admin_headers,
    )
    assert answer.status_code == 201, answer.text


def connect_sandbox(
    http: Any, admin_headers: dict[str, str], slug: str, store: SandboxStore, site: str, base=""
) -> None:
    answer = http.put(
        f"{base}/api/v1/admin/tenants/{slug}/connection",
        json={
            "site": site,
            "company_id": "baton-sandbox",
            "public_key": SANDBOX_PUBLIC_KEY,
            "private_key": SANDBOX_PRIVATE_KEY,
            "client_id": "00000000-0000-4000-8000-000000000000",
        },
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text


def add_member(
    http: Any,
    admin_headers: dict[str, str],
    slug: str,
    psa_member_id: str,
    role: str,
    name: str = "",
    base: str = "",
) -> tuple[int, dict[str, str]]:
    """The member's id and its bearer headers."""
    answer = http.post(
        f"{base}/api/v1/admin/tenants/{slug}/members",
        json={
            "psa_member_id": psa_member_id,
            "name": name or psa_member_id.title(),
            "email": f"{psa_member_id}@example.com",
            "role": role,
        },
        headers=admin_headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json() if callable(getattr(answer, "json", None)) else answer.get_json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def record_escalation(app, slug: str, ticket_id: str, actor: str = "", reason: str = "") -> int:
    """An escalation as a webhook makes it: the pipeline's record(), no PSA needed."""
    import uuid

    from connector import escalations
    from connector.tenants import get_tenant

    with app.app_context():
        tenant = get_tenant(slug)
        event = TicketEvent(
            ticket_id=ticket_id,
            delivery_key=f"test:{uuid.uuid4()}",
            status="Escalated",
            title=f"Ticket {ticket_id}",
            actor=actor,
        )
        recorded = escalations.record(tenant, event, reason=reason or None)
        assert recorded.created and recorded.escalation is not None
        return recorded.escalation.id


def stream_events(app, tenant_slug: str) -> list[tuple[str, dict[str, str]]]:
    """What was published on the tenant's Redis stream: (kind, raw fields)."""
    from connector import events
    from connector.tenants import get_tenant

    with app.app_context():
        key = events.stream_key(get_tenant(tenant_slug).id)
    entries = app.extensions["baton"].redis.xrange(key)
    out = []
    for _id, fields in entries:
        decoded = {k.decode(): v.decode() for k, v in fields.items()}
        out.append((decoded["kind"], decoded))
    return out


class SSEReader:
    """A Server-Sent Events client on a thread: frames go to a queue, comments to a list."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.response = requests.get(url, headers=headers, stream=True, timeout=(5, 60))
        self.frames: queue_mod.Queue[dict[str, str]] = queue_mod.Queue()
        self.comments: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        frame: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                if line == "":
                    if frame:
                        self.frames.put(frame)
                    frame = {}
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    frame[name] = value[1:] if value.startswith(" ") else value
        except Exception:  # closed by the test
            return

    def next_event(self, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no event arrived"
            frame = self.frames.get(timeout=remaining)
            if "event" in frame:
                return frame

    def until(self, kind: str, timeout: float = 10.0) -> list[dict[str, str]]:
        """The events up to and including the next one of `kind`."""
        frames = [self.next_event(timeout)]
        while frames[-1]["event"] != kind:
            frames.append(self.next_event(timeout))
        return frames

    def drain(self, seconds: float) -> list[dict[str, str]]:
        """Every event that arrives within `seconds`."""
        time.sleep(seconds)
        out = []
        while not self.frames.empty():
            frame = self.frames.get_nowait()
            if "event" in frame:
                out.append(frame)
        return out

    def close(self) -> None:
        self.response.close()
