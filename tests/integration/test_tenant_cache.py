"""The per-process tenant snapshot the webhook path reads: no database read per delivery, and a
change saved on one instance is seen by the next delivery on every other (shared Redis)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import redis
import responses
from sqlalchemy import Engine, event

from connector import tenant_cache
from connector.db import session

SIGNING_KEY = "tenant-cache-signing-key"
KEY_URL = (
    "https://api-na.myconnectwise.net/v2025_1/system/callbackkey/index.rails?companyName=acme&id=1"
)


def callback(message_id: str, ticket: int, status: str) -> bytes:
    return json.dumps(
        {
            "MessageId": message_id,
            "Action": "updated",
            "Type": "ticket",
            "ID": ticket,
            "CompanyId": "acme",
            "Entity": json.dumps(
                {
                    "id": ticket,
                    "summary": "x",
                    "recordType": "ServiceTicket",
                    "status": {"name": status},
                }
            ),
            "Metadata": {"key_url": KEY_URL},
        }
    ).encode()


def post(client, body: bytes):
    digest = hmac.new(hashlib.sha256(SIGNING_KEY.encode()).digest(), body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "x-content-signature": base64.b64encode(digest.digest()).decode(),
    }
    return client.post("/webhooks/connectwise/acme", data=body, headers=headers)


@pytest.fixture
def two_instances(app_factory, admin_headers):
    """Two app instances (two web processes in production) on one database and one Redis."""
    first, second = app_factory(), app_factory()
    admin = second.test_client()
    admin.post(
        "/api/v1/admin/tenants",
        headers=admin_headers,
        json={
            "slug": "acme",
            "name": "Acme",
            "vendor": "connectwise",
            "escalation_statuses": ["Escalated"],
        },
    )
    admin.put(
        "/api/v1/admin/tenants/acme/connection",
        headers=admin_headers,
        json={
            "site": "https://api-na.myconnectwise.net",
            "company_id": "acme",
            "public_key": "pub",
            "private_key": "priv",
            "client_id": "cid",
        },
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as psa:
        psa.get(KEY_URL, json={"signing_key": SIGNING_KEY})
        yield first, admin


def statements_during(app, action):
    """The SQL statements `action` sends, read from the engine's own events."""
    seen: list[str] = []
    engine = Engine  # every engine: the session is bound to the last app's

    def note(_conn, _cursor, statement, *_args):
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", note)
    try:
        result = action()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return result, seen


def test_an_ignored_delivery_sends_no_statement_at_all(two_instances):
    """The tenant from the snapshot, the audit row through Redis (connector.ingest_gate)."""
    first, _admin = two_instances
    client = first.test_client()
    assert post(client, callback("warm-up", 1, "New")).status_code == 200  # the tenant is cached
    answer, statements = statements_during(
        first, lambda: post(client, callback("m-ignored", 2, "In Progress"))
    )
    assert answer.status_code == 200 and "not an escalation status" in answer.get_json()["ignored"]
    assert statements == []


def test_a_trigger_saved_on_one_instance_is_seen_by_the_next_delivery_on_the_other(
    two_instances, admin_headers
):
    first, admin = two_instances
    client = first.test_client()
    with first.app_context():
        cached = tenant_cache.cache()
    ignored = post(client, callback("m-1", 7, "Needs Senior"))
    assert ignored.status_code == 200 and "Needs Senior" in ignored.get_json()["ignored"]
    assert cached.ttl_seconds >= 30  # what follows cannot be the TTL expiring

    changed = admin.patch(
        "/api/v1/admin/tenants/acme",
        headers=admin_headers,
        json={"escalation_statuses": ["Escalated", "Needs Senior"]},
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)

    accepted = post(client, callback("m-2", 7, "Needs Senior"))
    assert accepted.status_code == 202, accepted.get_data(as_text=True)


def test_a_connection_saved_on_one_instance_is_used_at_once_by_the_other(
    two_instances, admin_headers
):
    """The connection (and the adapter built from it) is part of the snapshot too."""
    first, admin = two_instances
    client = first.test_client()
    assert post(client, callback("m-1", 9, "New")).status_code == 200
    moved = admin.put(
        "/api/v1/admin/tenants/acme/connection",
        headers=admin_headers,
        json={
            "site": "https://api-na.myconnectwise.net",
            "company_id": "globex",  # a callback for acme is now another company's
            "public_key": "pub",
            "private_key": "",
            "client_id": "cid",
        },
    )
    assert moved.status_code == 200, moved.get_data(as_text=True)
    refused = post(client, callback("m-2", 9, "New"))
    assert refused.status_code == 401, refused.get_data(as_text=True)


def test_without_redis_nothing_is_cached(two_instances):
    """A snapshot nobody could invalidate would be served stale: it is not kept at all."""
    first, _admin = two_instances
    with first.app_context():
        cache = tenant_cache.TenantCache(_DeadRedis())  # type: ignore[arg-type]
        assert cache.lookup("acme") is not None
        assert cache.lookup("acme") is not None
        assert cache._entries == {}
        session.remove()


class _DeadRedis:
    def get(self, _key):
        raise redis.ConnectionError("down")
