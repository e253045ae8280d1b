"""Hostile input, table-driven: every bad request gets a clear JSON error with the right status,
never a 500, and writes nothing but the webhook audit row."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from connector import delivery_audit
from connector.db import session
from connector.models import Escalation, Member, Tenant, WebhookDelivery

SIGNING_KEY = "hostile-test-signing-key"


@pytest.fixture
def setup(app, client, admin_headers):
    """Two tenants; a ConnectWise tenant whose key URL answers from the site, members of both."""
    for slug in ("acme", "other"):
        client.post(
            "/api/v1/admin/tenants",
            headers=admin_headers,
            json={
                "slug": slug,
                "name": slug,
                "vendor": "connectwise",
                "escalation_statuses": ["Escalated"],
            },
        )
        client.put(
            f"/api/v1/admin/tenants/{slug}/connection",
            headers=admin_headers,
            json={
                "site": "https://api-na.myconnectwise.net",
                "company_id": slug,
                "public_key": "pub",
                "private_key": "priv",
                "client_id": "cid",
            },
        )
    tokens = {}
    for slug, psa_id, role in (
        ("acme", "tech", "technician"),
        ("acme", "senior", "engineer"),
        ("other", "senior2", "engineer"),
    ):
        tokens[psa_id] = client.post(
            f"/api/v1/admin/tenants/{slug}/members",
            headers=admin_headers,
            json={
                "psa_member_id": psa_id,
                "name": psa_id,
                "email": f"{psa_id}@example.com",
                "role": role,
            },
        ).get_json()["token"]
    return tokens


def counts() -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count(Tenant.id))),
        session.scalar(select(func.count(Member.id))),
        session.scalar(select(func.count(Escalation.id))),
    )


def signed(body: bytes) -> str:
    key = hashlib.sha256(SIGNING_KEY.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


CALLBACK = json.dumps(
    {
        "MessageId": "m-1",
        "Action": "updated",
        "Type": "ticket",
        "ID": 42,
        "CompanyId": "acme",
        "Entity": json.dumps(
            {
                "id": 42,
                "summary": "x",
                "recordType": "ServiceTicket",
                "status": {"name": "Escalated"},
            }
        ),
        "Metadata": {
            "key_url": "https://api-na.myconnectwise.net/v2025_1//system/callbackkey/"
            "index.rails?companyName=acme&id=1"
        },
    }
).encode()

WEBHOOK_CASES = [
    # (name, slug, body, headers, status, code)
    ("unknown tenant", "nope", CALLBACK, {"x-content-signature": "x"}, 404, "unknown_tenant"),
    (
        "not json content type",
        "acme",
        CALLBACK,
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    ("missing signature", "acme", CALLBACK, {}, 401, "invalid_signature"),
    ("bad signature", "acme", CALLBACK, {"x-content-signature": "AAAA"}, 401, "invalid_signature"),
    (
        "malformed json",
        "acme",
        b"{not json",
        {"x-content-signature": "AAAA"},
        400,
        "malformed_body",
    ),
    ("oversized", "acme", b"{" + b" " * (1024 * 1024 + 10) + b"}", {}, 413, "payload_too_large"),
]


@pytest.mark.parametrize(
    ("name", "slug", "body", "headers", "status", "code"),
    WEBHOOK_CASES,
    ids=[c[0] for c in WEBHOOK_CASES],
)
def test_bad_webhooks(app, client, setup, name, slug, body, headers, status, code):
    before = counts()
    headers = {"Content-Type": "application/json", **headers}
    response = client.post(f"/webhooks/connectwise/{slug}", data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == code
    assert counts() == before
    # A refusal's audit row waits in Redis until a worker, the sweep or a reader flushes it.
    assert delivery_audit.flush(app.extensions["baton"].redis) == 1
    audit = session.scalars(
        select(WebhookDelivery).order_by(WebhookDelivery.received_at.desc())
    ).first()
    assert audit is not None and audit.outcome == "refused" and audit.status_code == status
    assert audit.stream_id is not None


API = "/api/v1"


def api_cases(tokens):
    tech = {"Authorization": f"Bearer {tokens['tech']}"}
    other = {"Authorization": f"Bearer {tokens['senior2']}"}
    senior = {"Authorization": f"Bearer {tokens['senior']}"}
    return [
        ("no token", "get", f"{API}/escalations/1", {}, None, 401),
        ("garbage token", "get", f"{API}/escalations/1", {"Authorization": "Bearer x"}, None, 401),
        ("unknown escalation", "get", f"{API}/escalations/999", senior, None, 404),
        ("non-integer id", "get", f"{API}/escalations/abc", senior, None, 404),
        ("another tenant's escalation", "get", f"{API}/escalations/1", other, None, 404),
        ("technician sees only own", "get", f"{API}/escalations/1", tech, None, 404),
        ("admin api with member token", "get", f"{API}/admin/tenants", senior, None, 401),
        (
            "wrong types",
            "post",
            f"{API}/admin/tenants",
            None,
            {"slug": 5, "name": [], "vendor": "connectwise", "escalation_statuses": [1]},
            422,
        ),
        ("wrong method", "delete", f"{API}/admin/tenants", None, None, 405),
    ]


def test_bad_api_requests(app, client, setup, admin_headers):
    # One escalation of tenant "acme", made by nobody in particular.
    acme = session.scalar(select(Tenant).where(Tenant.slug == "acme"))
    session.add(Escalation(tenant_id=acme.id, ticket_id="42", delivery_key="seed"))
    session.commit()
    for name, method, path, headers, body, status in api_cases(setup):
        headers = admin_headers if headers is None else headers
        before = counts()
        response = getattr(client, method)(path, headers=headers, json=body)
        assert response.status_code == status, (name, response.get_data(as_text=True)[:200])
        assert "error" in response.get_json(), name
        assert counts() == before, name


def test_webhook_rate_limit_answers_429_with_retry_after(app_factory):
    app = app_factory(webhook_rate_limit="3/minute")
    client = app.test_client()
    answers = [client.post("/webhooks/connectwise/nope", json={}) for _ in range(5)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429, 429]
    limited = answers[-1]
    assert limited.get_json()["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) > 0
