"""PostgreSQL restarted while webhooks arrive: each delivery is either recorded (2xx) or
refused with 5xx so the PSA retries; none is answered 2xx and then lost."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.db import session
from connector.models import Escalation
from tests.corpus import load_corpus


def restart_postgres() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_deliveries_during_a_postgres_restart_are_recorded_or_refused(baton, sandbox):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.fail("this test restarts PostgreSQL: DATABASE_URL must point at it (./dev test)")
    if not Path("/etc/postgresql").exists():
        pytest.fail("this test needs the machine's PostgreSQL cluster (pg_ctlcluster)")
    app, _live, _token = baton
    store, _server = sandbox
    tickets = [row["id"] for row in load_corpus()][:24]

    def escalate_all() -> None:
        for ticket in tickets:
            store.escalate(ticket, member="kpatel")
            time.sleep(0.15)

    sender = threading.Thread(target=escalate_all)
    sender.start()
    time.sleep(0.8)
    restart_postgres()
    sender.join()
    # The sandbox, like a PSA, retries refused deliveries; wait for every attempt to settle.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answered = {d.body: d.status for d in store.deliveries}
        if len(answered) >= len(tickets) and all(
            any(d.status and d.status < 500 for d in store.deliveries if d.body == body)
            or sum(1 for d in store.deliveries if d.body == body) >= 3
            for body in answered
        ):
            break
        time.sleep(0.2)

    statuses = [d.status for d in store.deliveries]
    assert all(s is None or s in (202, 200) or s >= 500 for s in statuses), statuses
    accepted_keys = set()
    import json

    for delivery in store.deliveries:
        if delivery.status == 202:
            accepted_keys.add(json.loads(delivery.body)["MessageId"])
    session.remove()
    with app.app_context():
        recorded = set(session.scalars(select(Escalation.delivery_key)))
        session.remove()
    lost = accepted_keys - recorded
    assert not lost, f"answered 202 but not recorded: {lost}"
    assert accepted_keys, "no delivery was accepted at all"
