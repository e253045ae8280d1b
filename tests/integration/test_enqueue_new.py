"""A new escalation's jobs and its live event in one pipeline (issue 18): the same jobs RQ's own
unique enqueue writes, still unique, on real Redis and on embedded mode's in-process one."""

from __future__ import annotations

import os

import pytest
import redis
from rq.job import Job

from connector import events
from connector.queue import HANDOFF, NOTIFICATIONS, REGISTRY, connect, enqueue_job, enqueue_new

TENANT = 7
# What differs between two enqueues of two escalations: their times and their argument.
PER_ENQUEUE = {b"created_at", b"enqueued_at", b"data", b"description"}


class CountingConnection(redis.Connection):
    """Counts what is sent to Redis: one count a round trip."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL must point at Redis for this test (./dev test sets it)")
    return url


@pytest.fixture(params=["redis", "embedded"])
def connection(request):
    connection = connect(redis_url() if request.param == "redis" else None)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def counted():
    pool = redis.ConnectionPool.from_url(redis_url(), connection_class=CountingConnection)
    connection = redis.Redis(connection_pool=pool)
    connection.flushdb()
    yield connection
    connection.flushdb()
    pool.disconnect()


def announce(escalation_id: int):
    event = {"escalation_id": escalation_id}
    return lambda pipe: events.publish(pipe, TENANT, "escalation.created", event)


def test_the_jobs_are_those_rqs_own_enqueue_writes(connection):
    assert enqueue_new(connection, (HANDOFF, NOTIFICATIONS), 1, tenant_id=TENANT) == [True, True]
    for kind in (HANDOFF, NOTIFICATIONS):
        assert enqueue_job(connection, kind, 2, tenant_id=TENANT)  # RQ's Queue.enqueue
        ours, rqs = (connection.hgetall(f"rq:job:{kind.job_id(n)}") for n in (1, 2))
        assert ours.keys() == rqs.keys()
        assert {k: v for k, v in ours.items() if k not in PER_ENQUEUE} == {
            k: v for k, v in rqs.items() if k not in PER_ENQUEUE
        }
        job = Job.fetch(kind.job_id(1), connection=connection)
        assert (job.func_name, job.args, job.origin) == (
            kind.entry_point,
            (1,),
            f"{kind.queue_name}:{TENANT}",
        )
        assert job.retries_left == len(kind.retry_intervals)
        queue_key = f"rq:queue:{kind.queue_name}:{TENANT}"
        assert connection.lrange(queue_key, 0, -1) == [
            kind.job_id(1).encode(),
            kind.job_id(2).encode(),
        ]
        assert connection.sismember(REGISTRY, queue_key)  # workers learn the tenant's queue


def test_a_job_that_exists_is_not_enqueued_again_and_the_event_still_goes_out(connection):
    assert enqueue_new(connection, (HANDOFF,), 1, tenant_id=TENANT) == [True]
    again = enqueue_new(
        connection, (HANDOFF, NOTIFICATIONS), 1, tenant_id=TENANT, before=announce(1)
    )
    assert again == [False, True]
    assert connection.llen(f"rq:queue:{HANDOFF.queue_name}:{TENANT}") == 1
    assert connection.xlen(events.stream_key(TENANT)) == 1


def test_the_event_and_both_jobs_are_one_pipeline_after_the_first(counted):
    enqueue_new(counted, (HANDOFF, NOTIFICATIONS), 1, tenant_id=TENANT, before=announce(1))
    CountingConnection.sent = 0
    enqueue_new(counted, (HANDOFF, NOTIFICATIONS), 2, tenant_id=TENANT, before=announce(2))
    # redis-py asks whether the script is loaded before a pipeline that runs one: 2, not 5.
    assert CountingConnection.sent == 2
    assert counted.xlen(events.stream_key(TENANT)) == 2
    assert counted.llen(f"rq:queue:{NOTIFICATIONS.queue_name}:{TENANT}") == 2


def test_redis_out_of_reach_is_raised_for_the_caller_to_leave_to_the_sweeper():
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        enqueue_new(unreachable, (HANDOFF,), 1, tenant_id=TENANT)
