"""Fixtures for end-to-end tests: a sandbox PSA, and Baton over HTTP connected to it."""

from __future__ import annotations

import pytest
import requests

from adapters.connectwise.sandbox.state import connectwise_state
from adapters.sandbox import serve_sandbox
from adapters.sandbox.store import SandboxStore
from tests.integration.pipeline import connect_sandbox_tenant
from tests.integration.smtp import SMTPServer


@pytest.fixture
def sandbox():
    store = SandboxStore()
    server = serve_sandbox(store)
    yield store, server
    server.stop()


@pytest.fixture
def baton(app_factory, live_server_factory, admin_headers, sandbox):
    """Baton over HTTP: a ConnectWise tenant connected to the sandbox, its callback installed."""
    store, server = sandbox
    app = app_factory()
    live = live_server_factory(app)
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(public_url=live.url)
    api = requests.Session()
    api.headers.update(admin_headers)
    connect_sandbox_tenant(api, live.url, store, server)
    again = api.post(f"{live.url}/api/v1/admin/tenants/acme/webhooks/install")
    # One callback per board holding "Escalated" (every sandbox board has it), found again.
    assert again.json()["created"] is False
    assert len(connectwise_state(store).callbacks()) == len(store.boards())
    member = api.post(
        f"{live.url}/api/v1/admin/tenants/acme/members",
        json={
            "psa_member_id": "sseniorr",
            "name": "Sam Senior",
            "email": "sam@example.com",
            "role": "engineer",
        },
    ).json()
    return app, live, member["token"]


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()
