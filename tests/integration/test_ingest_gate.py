# ruff: noqa: F811  (two_instances is a pytest fixture imported from test_tenant_cache)
"""The webhook's one Redis round trip (connector.ingest_gate): a delivery that changes nothing
writes its audit row to a Redis stream, and the audit stays complete, ordered and exact."""

from __future__ import annotations

import redis
from sqlalchemy import delete, select

from connector import delivery_audit, escalated_index, ingest_gate
from connector.db import session
from connector.models import Escalation, Tenant, TicketState, WebhookDelivery
from connector.sweeper import sweep
from tests.integration.test_tenant_cache import (  # noqa: F401 (two_instances: a fixture)
    callback,
    post,
    statements_during,
    two_instances,
)


def audit_rows(app) -> list[WebhookDelivery]:
    with app.app_context():
        delivery_audit.flush(app.extensions["baton"].redis)
        order = (WebhookDelivery.received_at, WebhookDelivery.id)
        return list(session.scalars(select(WebhookDelivery).order_by(*order)))


def escalated(app, ticket: str) -> bool:
    with app.app_context():
        state = session.scalar(select(TicketState).where(TicketState.ticket_id == ticket))
        return bool(state and state.escalated)


def test_every_answer_has_one_audit_row_in_arrival_order_after_a_flush(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    sent = [
        (callback("a-1", 1, "New"), 200),
        (callback("a-2", 2, "Escalated"), 202),
        (callback("a-3", 3, "In Progress"), 200),
        (b"{not json", 400),  # signed, but not JSON
        (callback("a-2", 2, "Escalated"), 202),  # the same delivery again: a duplicate
        (callback("a-4", 4, "Waiting"), 200),
    ]
    for body, status in sent:
        assert post(client, body).status_code == status
    rows = audit_rows(first)
    assert [r.outcome for r in rows] == [
        "ignored",
        "accepted",
        "ignored",
        "refused",
        "duplicate",
        "ignored",
    ]
    # Rows 3, 4 and 6 came through the stream: they carry its entry id; the others were
    # committed with the escalation they recorded.
    assert [r.stream_id is not None for r in rows] == [False, False, True, True, False, True]
    with first.app_context():
        assert delivery_audit.flush(first.extensions["baton"].redis) == 0  # nothing left


def test_a_flush_that_died_before_trimming_copies_nothing_twice(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    post(client, callback("warm", 1, "New"))
    for n in range(5):
        assert post(client, callback(f"i-{n}", 10 + n, "In Progress")).status_code == 200

    class NeverTrims(redis.Redis):
        def xdel(self, name, *ids):  # the process died between the commit and the trim
            return 0

    url = first.extensions["baton"].settings.redis_url
    if url:  # embedded mode's in-process Redis has no second client to open
        with first.app_context():
            assert delivery_audit.flush(NeverTrims.from_url(url)) == 5
    rows = audit_rows(first)
    assert len(rows) == 6 and len({r.stream_id for r in rows if r.stream_id}) == 5


def test_a_ticket_that_left_an_escalated_status_escalates_again(two_instances):
    """The escalated index sends a save of an escalated ticket to the database: the spell
    ends there, so the next escalation of the ticket is a new one."""
    first, _admin = two_instances
    client = first.test_client()
    assert post(client, callback("e-1", 5, "Escalated")).status_code == 202
    with first.app_context():
        key = escalated_index.key(session.scalar(select(Tenant.id)))
        assert first.extensions["baton"].redis.sismember(key, "5")
    answer, statements = statements_during(
        first, lambda: post(client, callback("e-2", 5, "In Progress"))
    )
    assert answer.status_code == 200 and "UPDATE" in statements
    assert not escalated(first, "5")
    assert post(client, callback("e-3", 5, "Escalated")).status_code == 202
    with first.app_context():
        assert len(session.scalars(select(Escalation)).all()) == 2


def test_a_new_escalation_is_one_statement_on_postgresql(two_instances):
    """The ticket enters its spell, the escalation, its pending handoff and the audit row: one
    statement, its own transaction (SQLite, without INSERT in WITH: one commit)."""
    first, _admin = two_instances
    client = first.test_client()
    assert post(client, callback("warm", 1, "New")).status_code == 200  # the tenant is cached
    answer, statements = statements_during(
        first, lambda: post(client, callback("n-1", 8, "Escalated"))
    )
    assert answer.status_code == 202
    with first.app_context():
        dialect = session.get_bind().dialect.name
        escalation = session.get_one(Escalation, answer.get_json()["escalation_id"])
        assert escalation.ticket_id == "8" and escalation.delivery_key
        assert escalation.handoff is not None and escalation.handoff.state == "pending"
        assert escalation.handoff.what_we_know == [] and escalation.handoff.partial is None
    expected = ["WITH"] if dialect == "postgresql" else ["INSERT", "INSERT", "INSERT", "INSERT"]
    assert statements == expected
    assert escalated(first, "8")
    with first.app_context():  # indexed by the gate, in its round trip, before the commit
        key = escalated_index.key(escalation.tenant_id)
        assert first.extensions["baton"].redis.sismember(key, "8")
    accepted = [r for r in audit_rows(first) if r.outcome == "accepted"]
    assert [(r.escalation_id, r.status_code) for r in accepted] == [(escalation.id, 202)]


def test_a_lost_index_is_rebuilt_from_the_database(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    connection = first.extensions["baton"].redis
    assert post(client, callback("l-1", 6, "Escalated")).status_code == 202
    with first.app_context():
        key = escalated_index.key(session.scalar(select(Tenant.id)))
    connection.delete(key)  # Redis restarted without its data
    # Without the index nothing can say ticket 6 is not escalated: the database is asked.
    answer, statements = statements_during(
        first, lambda: post(client, callback("l-2", 7, "In Progress"))
    )
    assert answer.status_code == 200 and "UPDATE" in statements
    assert connection.sismember(key, escalated_index.COMPLETE)
    assert connection.sismember(key, "6")
    assert post(client, callback("l-3", 6, "In Progress")).status_code == 200
    assert not escalated(first, "6")


def test_the_sweep_flushes_and_puts_back_an_escalated_ticket_an_add_missed(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    connection = first.extensions["baton"].redis
    assert post(client, callback("s-1", 8, "Escalated")).status_code == 202
    assert post(client, callback("s-2", 9, "New")).status_code == 200
    assert post(client, callback("s-3", 10, "New")).status_code == 200  # through the stream
    with first.app_context():
        key = escalated_index.key(session.scalar(select(Tenant.id)))
        connection.srem(key, "8")  # as if Redis had refused the add
        report = sweep()
        session.remove()
    assert report.audit_rows == 1
    assert connection.sismember(key, "8")


def test_without_redis_the_audit_row_goes_straight_to_the_database(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    assert post(client, callback("r-1", 1, "New")).status_code == 200
    # The gate's own connection goes nowhere; the rest of the app keeps its Redis.
    first.extensions["baton"].extras["ingest_gate"] = ingest_gate.IngestGate(
        redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    )
    assert post(client, callback("r-2", 2, "In Progress")).status_code == 200
    assert post(client, callback("r-3", 3, "Escalated")).status_code == 202
    with first.app_context():
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [r.delivery_key for r in rows] == ["r-1", "r-2", "r-3"]


def test_rows_of_a_tenant_deleted_meanwhile_are_dropped_not_stuck(two_instances):
    first, _admin = two_instances
    client = first.test_client()
    post(client, callback("d-1", 1, "New"))
    assert post(client, callback("d-2", 2, "In Progress")).status_code == 200
    with first.app_context():
        session.execute(delete(Tenant))
        session.commit()
        assert delivery_audit.flush(first.extensions["baton"].redis) == 0
        assert first.extensions["baton"].redis.xlen(delivery_audit.STREAM) == 0
