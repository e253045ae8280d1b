"""Embedded mode as the README's run command starts it: SQLite, the in-process Redis stand-in,
the worker thread and the sandbox PSA in one process, no API key."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from sqlalchemy import select

from tests.conftest import LiveServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The sandbox speaks its first dialect unless CONNECTOR_SANDBOX_DIALECT names another.
@pytest.mark.parametrize("dialect", ["", "autotask", "halopsa"])
def test_one_process_turns_a_sandbox_escalation_into_a_fallback_note(
    tmp_path, no_anthropic_key, dialect
):
    from connector import db
    from connector.app import create_app
    from connector.config import load_settings

    port = free_port()
    settings = load_settings(
        {
            "CONNECTOR_INSTANCE_PATH": str(tmp_path / "instance"),
            "CONNECTOR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CONNECTOR_SANDBOX_DIALECT": dialect,
        }
    )
    assert settings.embedded and settings.sandbox and settings.database_url.startswith("sqlite")
    app = create_app(settings)
    app.extensions["baton"].redis.flushdb()
    server = LiveServer.__new__(LiveServer)
    import threading

    from werkzeug.serving import make_server

    server.server = make_server("127.0.0.1", port, app, threaded=True)
    server.url = f"http://127.0.0.1:{port}"
    server.thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    server.start()
    try:
        assert requests.get(f"{server.url}/readyz").json()["mode"] == "embedded"
        page = requests.get(f"{server.url}/sandbox/")
        assert page.status_code == 200 and "Escalate" in page.text
        answer = requests.post(f"{server.url}/sandbox/tickets/104877/escalate", json={})
        assert answer.status_code == 200
        store = app.extensions["baton"].extras["sandbox_store"]
        deadline = time.monotonic() + 20
        while not [n for n in store.notes(104877) if "[baton-handoff" in n.text]:
            assert time.monotonic() < deadline, "no handoff note in the sandbox PSA"
            time.sleep(0.1)
        spoken = dialect or "connectwise"
        assert f"/webhooks/{spoken}/sandbox" in store.deliveries[0].url
        [note] = [n for n in store.notes(104877) if "[baton-handoff" in n.text]
        assert note.internal and "ANTHROPIC_API_KEY is not set" in note.text
        assert "Summer2024!" not in note.text  # the corpus secret stays redacted
        tokens = (tmp_path / "instance" / "sandbox-members.json").read_text()
        assert "sseniorr" in tokens
        # Resolved in the sandbox: what fixed it is read back and kept on the escalation.
        fix = {"resolution": "Rebooted the NAS and cleared its full volume"}
        resolved = requests.post(f"{server.url}/sandbox/tickets/104877/resolve", json=fix)
        assert resolved.status_code == 200, resolved.text
        from connector.models import Escalation

        def resolution() -> str | None:
            with app.app_context():
                found = db.session.scalar(select(Escalation.resolution))
                db.session.remove()
                return found

        while resolution() != fix["resolution"]:
            assert time.monotonic() < deadline + 20, "the resolution was not read back"
            time.sleep(0.1)
    finally:
        server.stop()
        app.extensions["baton"].worker.stop()
        db.session.remove()
        app.extensions["baton"].engine.dispose()
