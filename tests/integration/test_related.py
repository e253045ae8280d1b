"""Seen before, on a history of its own (tests/related_history.py), in PostgreSQL and SQLite:
the same client and device failing again ranks first, look-alikes from other clients do not,
and another tenant's history is never found."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from connector import db, related
from connector.migrate import upgrade
from connector.models import Escalation, Tenant
from tests.related_history import as_escalation, history, right, store

RIGHT_FIRST_TARGET = 0.9


def _tenants(connection) -> tuple[int, int]:
    ids = []
    for slug in ("mine", "theirs"):
        result = connection.execute(
            insert(Tenant).values(
                slug=slug, name=slug, vendor="connectwise", escalation_statuses=["Escalated"]
            )
        )
        ids.append(result.inserted_primary_key[0])
    return ids[0], ids[1]


def _check(engine) -> None:
    past, queries = history(800, clients_per_tenant=25)
    with engine.begin() as connection:
        tenant_ids = _tenants(connection)
        store(connection, past, tenant_ids)
    numbers = {p.number: p for p in past}
    theirs = {p.number for p in past if p.tenant == 1}
    hits = 0
    with Session(engine) as session:
        for query in queries:
            found = related.find(session, as_escalation(query, tenant_ids[0]))
            assert len(found) <= related.MAX_RELATED
            assert not theirs & {e.ticket_number for e in found}, "another tenant's history"
            assert all(e.tenant_id == tenant_ids[0] for e in found)
            hits += bool(found) and right(found[0], query, numbers)
        # The other tenant asks about the very same client and device: only its own come back.
        query = queries[0]
        found = related.find(session, as_escalation(query, tenant_ids[1]))
        assert all(e.ticket_number in theirs for e in found)
    rate = hits / len(queries)
    assert len(queries) >= 100
    assert rate >= RIGHT_FIRST_TARGET, f"right first in {rate:.0%} of {len(queries)}"


def test_seen_before_ranks_the_same_client_and_device_first_on_postgresql(migrated_engine):
    if migrated_engine.dialect.name != "postgresql":
        pytest.fail("DATABASE_URL must point at PostgreSQL for this test (./dev test sets it)")
    try:
        _check(migrated_engine)
    finally:
        with migrated_engine.begin() as connection:
            connection.execute(Escalation.__table__.delete())
            connection.execute(Tenant.__table__.delete())


def test_seen_before_ranks_the_same_client_and_device_first_on_sqlite(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'related.db'}")
    upgrade(engine)
    _check(engine)
    engine.dispose()


def test_a_thin_match_is_not_seen_before():
    """One shared word and no shared device is not the same problem."""
    thin = related.Candidate(1, 0.9, True, ("OTHER-1",), frozenset({"outlook", "slow"}))
    strong = related.Candidate(2, 0.1, False, ("KV-LT-01",), frozenset({"nothing"}))
    assert related.rank([thin, strong], {"outlook", "password", "prompt"}, ["KV-LT-01"]) == [2]


def test_words_leave_out_markers_and_noise():
    assert related.words("The [redacted: password] VPN vpn on FW01 failed, ticket 42") == [
        "vpn", "fw01", "failed", "42"
    ]  # fmt: skip
