"""Fair dispatch on real Redis: per-tenant queues served round robin, the handoff tier first,
new tenants' queues learned by running workers and schedulers (issue 19)."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from flask import Flask
from rq import Queue
from rq.job import JobStatus

from connector.queue import (
    HANDOFFS,
    NOTIFY,
    QUEUE_NAMES,
    AppWorker,
    TenantScheduler,
    ThreadWorker,
    connect,
    enqueue_once,
    job_status,
    known_queue_names,
    queue,
    tenant_queue_name,
)
from tests import jobs_for_tests

ORDER = "test-fair-order"


@pytest.fixture
def connection():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL must point at Redis for this test (./dev test sets it)")
    connection = connect(url)
    connection.flushdb()
    yield connection
    connection.flushdb()


def put(connection, tier: str, tenant: int, label: str) -> None:
    assert enqueue_once(
        connection,
        jobs_for_tests.record,
        ORDER,
        label,
        job_id=f"job-{label}",
        queue_name=tenant_queue_name(tier, tenant),
    )


def ran(connection) -> list[str]:
    return [v.decode() for v in connection.lrange(ORDER, 0, -1)]


def burst(connection) -> None:
    workers = [queue(connection, n) for n in QUEUE_NAMES]
    AppWorker(workers, connection=connection, app=Flask("t")).work(burst=True)


def test_a_quiet_tenant_is_served_between_a_bursting_tenants_jobs(connection):
    for n in range(6):
        put(connection, HANDOFFS, 1, f"burst-{n}")
    put(connection, HANDOFFS, 2, "quiet-0")
    put(connection, HANDOFFS, 3, "quiet-1")
    burst(connection)
    order = ran(connection)
    # One turn each: the burster's first, then each quiet tenant, then the burst goes on.
    assert order[:3] == ["burst-0", "quiet-0", "quiet-1"]
    assert order[3:] == [f"burst-{n}" for n in range(1, 6)]


def test_the_handoff_tier_comes_before_the_same_tenants_notifications(connection):
    put(connection, NOTIFY, 1, "notify-a")
    put(connection, NOTIFY, 2, "notify-b")
    put(connection, HANDOFFS, 1, "handoff-a")
    put(connection, HANDOFFS, 2, "handoff-b")
    burst(connection)
    order = ran(connection)
    assert set(order[:2]) == {"handoff-a", "handoff-b"}
    assert set(order[2:]) == {"notify-a", "notify-b"}


def test_a_worker_on_one_tier_serves_only_that_tiers_tenant_queues(connection):
    put(connection, HANDOFFS, 4, "handoff")
    put(connection, NOTIFY, 4, "notify")
    AppWorker([queue(connection, NOTIFY)], connection=connection, app=Flask("t")).work(burst=True)
    assert ran(connection) == ["notify"]
    assert known_queue_names(connection, {HANDOFFS}) == [HANDOFFS, f"{HANDOFFS}:4"]


def test_a_running_worker_learns_a_new_tenants_queue(connection):
    worker = ThreadWorker(
        [queue(connection, n) for n in QUEUE_NAMES], connection=connection, app=Flask("t")
    )
    thread = threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"})
    thread.start()
    try:
        time.sleep(1.5)  # idle, blocked on the queues it knew at its start
        put(connection, HANDOFFS, 99, "newcomer")
        deadline = time.monotonic() + 5
        while job_status(connection, "job-newcomer") != JobStatus.FINISHED:
            assert time.monotonic() < deadline, "the worker never served the new queue"
            time.sleep(0.05)
    finally:
        worker._stop_requested = True
        thread.join(5)
    assert not thread.is_alive()


def test_the_scheduler_moves_retries_of_a_tenant_queue_it_learned_later(connection):
    scheduler = TenantScheduler([queue(connection, HANDOFFS)], connection=connection, interval=1)
    scheduler.acquire_locks()
    name = tenant_queue_name(HANDOFFS, 5)
    job = Queue(name, connection=connection).enqueue_in(
        timedelta(seconds=0), jobs_for_tests.add, 1, 2, job_id="later"
    )
    assert job.get_status() == JobStatus.SCHEDULED
    time.sleep(0.1)
    scheduler.enqueue_scheduled_jobs()
    assert job_status(connection, "later") == JobStatus.QUEUED
    assert "later" in Queue(name, connection=connection).job_ids
    scheduler.release_locks()


def test_a_tenant_whose_queue_appears_mid_burst_gets_the_next_turn(connection):
    for n in range(4):
        put(connection, HANDOFFS, 1, f"burst-{n}")
    worker = AppWorker(
        [queue(connection, n) for n in QUEUE_NAMES], connection=connection, app=Flask("t")
    )
    worker.work(burst=True, max_jobs=1)  # the burster's first job: its queue was just served
    put(connection, HANDOFFS, 2, "newcomer")  # a queue this worker has never seen
    worker.work(burst=True)
    assert ran(connection) == ["burst-0", "newcomer", "burst-1", "burst-2", "burst-3"]
