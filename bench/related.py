"""Seen before: how often the right earlier escalation ranks first, and the lookup time, with
100,000 past escalations in PostgreSQL.

    .venv/bin/python bench/related.py [--size 100000] [--clients 400] [--queries 500]

A scratch PostgreSQL database (migrated to head: the GIN-indexed tsvector of migration 0007)
gets --size earlier escalations from tests/related_history.py: --clients clients per tenant
with their devices (400: some 190 escalations per client; 40 is a stress case of 1,900),
ten kinds of incident in several wordings each, repeats on the same client and device, the
same incidents at other clients, and a quarter of the rows in a second tenant with the very
same clients and devices. Each query is a new escalation, in a wording of its own,
of an incident that happened before on that client and device; it is right when
`connector.related.find()` puts an earlier escalation of the same incident, client and device
first. Another tenant's escalation in any result is counted and must be zero. The time is
find()'s wall-clock time per query (the index lookup, the ranking, reading the best rows),
after 20 warm-up queries. No Redis is used.
"""

from __future__ import annotations

import argparse
import time

from _harness import header, ms, percentile, scratch_database, verdict
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from connector import db, related
from connector.migrate import upgrade
from connector.models import Tenant
from tests.related_history import as_escalation, history, right, store

RIGHT_FIRST_TARGET = 0.90
LOOKUP_TARGET_SECONDS = 0.020
WARM_UP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    header("bench/related: seen before, right first and lookup time")
    with scratch_database() as url:
        engine = db.make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        upgrade(engine)
        past, queries = history(args.size, clients_per_tenant=args.clients)
        queries = queries[: args.queries]
        started = time.perf_counter()
        with engine.begin() as connection:
            tenant_ids = []
            for slug in ("mine", "theirs"):
                row = connection.execute(
                    insert(Tenant).values(slug=slug, name=slug, vendor="connectwise")
                )
                tenant_ids.append(row.inserted_primary_key[0])
            store(connection, past, (tenant_ids[0], tenant_ids[1]))
        with engine.begin() as connection:
            connection.execute(text("ANALYZE escalations"))
        print(
            f"{len(past):,} past escalations ({sum(p.tenant == 1 for p in past):,} in the other "
            f"tenant), {args.clients} clients per tenant, loaded in "
            f"{time.perf_counter() - started:.1f} s; {len(queries)} queries"
        )
        numbers = {p.number: p for p in past}
        theirs = {p.number for p in past if p.tenant == 1}
        hits, leaks, empty, times = 0, 0, 0, []
        with Session(engine) as session:
            for query in queries[:WARM_UP]:
                related.find(session, as_escalation(query, tenant_ids[0]))
            for query in queries:
                escalation = as_escalation(query, tenant_ids[0])
                began = time.perf_counter()
                found = related.find(session, escalation)
                times.append(time.perf_counter() - began)
                leaks += sum(e.ticket_number in theirs for e in found)
                empty += not found
                hits += bool(found) and right(found[0], query, numbers)
        engine.dispose()
    rate = hits / len(queries)
    p50, p95 = percentile(times, 50), percentile(times, 95)
    print(f"right first: {hits} of {len(queries)} ({rate:.1%}); none found: {empty}")
    print(f"lookup time: p50 {ms(p50)}, p95 {ms(p95)}, max {ms(max(times))}")
    print(f"other tenant's escalations in results: {leaks}")
    print("-- against the targets")
    print(f"   right first >= {RIGHT_FIRST_TARGET:.0%}: {rate:.1%} -> "
          f"{verdict(rate >= RIGHT_FIRST_TARGET)}")  # fmt: skip
    print(f"   lookup p95 < {ms(LOOKUP_TARGET_SECONDS)}: {ms(p95)} -> "
          f"{verdict(p95 < LOOKUP_TARGET_SECONDS)}")  # fmt: skip
    print(f"   never another tenant's: {leaks} -> {verdict(leaks == 0)}")


if __name__ == "__main__":
    main()
