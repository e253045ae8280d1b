"""Secrets never reach a log line, an error message or an API response: a full run's logs are
captured and searched for every secret the test configured."""

from __future__ import annotations

import logging

import requests

from adapters.connectwise.sandbox.state import (
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
)
from tests.integration.pipeline import accepted, run_worker, wait_for


def test_no_configured_secret_in_any_log_or_response(
    baton, sandbox, fake_anthropic, monkeypatch, caplog, capfd, admin_headers
):
    caplog.set_level(logging.DEBUG)
    api_key = "sk-ant-test-DISTINCTIVE-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", api_key)
    app, live, member_token = baton
    store, _server = sandbox
    store.escalate(116390, member="cdunn")  # a ticket holding a password: "Sc@nDesk!2291"
    wait_for(lambda: accepted(store), what="callback")
    run_worker(app)
    bodies = [
        requests.get(f"{live.url}/api/v1/admin/tenants/acme", headers=admin_headers).text,
        requests.get(f"{live.url}/api/v1/admin/tenants", headers=admin_headers).text,
        requests.get(
            f"{live.url}/api/v1/escalations/1", headers={"Authorization": f"Bearer {member_token}"}
        ).text,
        # Errors too: a wrong key answers without echoing what was sent.
        requests.get(
            f"{live.url}/api/v1/admin/tenants",
            headers={"Authorization": f"Bearer {SANDBOX_PRIVATE_KEY}"},
        ).text,
    ]
    secrets = {
        "private key": SANDBOX_PRIVATE_KEY,
        "public key": SANDBOX_PUBLIC_KEY,
        "client id": "00000000-0000-4000-8000-000000000000",
        "admin token": admin_headers["Authorization"].split()[1],
        "member token": member_token,
        "anthropic key": api_key,
        "signing key": connectwise_state(store).signing_key,
        "ticket password": "Sc@nDesk!2291",
    }
    out, err = capfd.readouterr()
    logs = "\n".join(r.getMessage() + " " + str(getattr(r, "fields", "")) for r in caplog.records)
    haystacks = {"log records": logs, "stdout": out, "stderr": err, "responses": "\n".join(bodies)}
    assert caplog.records, "the run logged nothing: the test would prove nothing"
    for where, text in haystacks.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} appeared in {where}"
