"""The PSA limiter on real Redis: request slots and windows shared by every client of one
connection, waited for (bounded) and never refused by the PSA (issue 19)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
import responses

from adapters.base import AdapterOptions, RateLimited
from adapters.http import PSALimiter, VendorHTTP, window_storage


@pytest.fixture
def connection():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL must point at Redis for this test (./dev test sets it)")
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    yield connection
    connection.flushdb()


def limiter(connection, key="tenant-1", **kw) -> PSALimiter:
    return PSALimiter(connection, window_storage(os.environ["REDIS_URL"]), key, **kw)


def test_no_more_than_the_slots_are_in_flight_across_clients_and_each_waits_its_turn(connection):
    in_flight, peak, done = 0, 0, []
    lock = threading.Lock()

    def call(n: int) -> None:
        nonlocal in_flight, peak
        # A limiter each, as each worker process builds its own: only Redis is shared.
        with limiter(connection, max_concurrent=3).hold("tickets"):
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.15)
            with lock:
                in_flight -= 1
        done.append(n)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(done) == list(range(9))
    assert peak == 3
    assert connection.zcard("baton-psa-slots:tenant-1:tickets") == 0  # every slot given back


def test_slots_are_per_endpoint_and_per_connection(connection):
    one = limiter(connection, max_concurrent=1, max_wait_seconds=0.2)
    with one.hold("tickets"), one.hold("companies"):
        with limiter(connection, key="tenant-2", max_concurrent=1).hold("tickets"):
            pass
        with pytest.raises(RateLimited), one.hold("tickets"):
            pass


def test_a_slot_of_a_worker_that_died_is_freed_when_its_lease_ends(connection):
    held = limiter(connection, max_concurrent=1, lease_seconds=0.3)
    manager = held.hold("tickets")
    manager.__enter__()  # and never leaves: the process was killed
    started = time.monotonic()
    with limiter(connection, max_concurrent=1, max_wait_seconds=5).hold("tickets"):
        assert 0.2 < time.monotonic() - started < 2


def test_a_used_up_window_is_waited_for_then_refused_past_the_longest_wait(connection):
    windowed = limiter(connection, key="tenant-w", windows=("3/2 seconds",), max_wait_seconds=5)
    started = time.monotonic()
    for _ in range(4):
        with windowed.hold(""):
            pass
    assert time.monotonic() - started >= 1.5  # the fourth waited for the window to move
    impatient = limiter(connection, key="tenant-i", windows=("3/2 seconds",), max_wait_seconds=0.1)
    for _ in range(3):
        with impatient.hold(""):
            pass
    with pytest.raises(RateLimited) as refused, impatient.hold(""):
        pass
    assert refused.value.retry_after and 1 < refused.value.retry_after <= 2


class LateLook:
    """A window limiter whose look at the window comes late, as a worker's does when it is
    descheduled between the refused hit and the question of how long to wait."""

    def __init__(self, limiter, delay: float):
        self.limiter, self.delay = limiter, delay

    def hit(self, *args):
        return self.limiter.hit(*args)

    def get_window_stats(self, *args):
        time.sleep(self.delay)
        return self.limiter.get_window_stats(*args)


def test_a_window_that_moves_while_the_limiter_looks_at_it_is_not_waited_for(connection):
    full = limiter(connection, key="tenant-m", windows=("3/2 seconds",))
    filled = time.monotonic()
    for _ in range(3):
        with full.hold(""):
            pass
    time.sleep(max(0.0, filled + 1.85 - time.monotonic()))
    late = limiter(connection, key="tenant-m", windows=("3/2 seconds",), max_wait_seconds=0.5)
    late.window_limiter = LateLook(late.window_limiter, delay=0.4)  # type: ignore[assignment]
    started = time.monotonic()
    with late.hold(""):  # refused at 1.85 s, every hit gone by the look at 2.25 s: room now
        pass
    assert time.monotonic() - started < 1


@responses.activate
def test_every_vendor_request_passes_the_limiter_before_it_is_sent(connection):
    responses.get("https://psa.example/api/tickets/1", json={"id": 1})
    held = limiter(connection, key="tenant-v", windows=("1/10 seconds",), max_wait_seconds=0.1)
    http = VendorHTTP(
        "testpsa", AdapterOptions(allow_private_urls=True, max_attempts=1, limiter=held)
    )
    assert http.request("GET", "https://psa.example/api/tickets/1").json() == {"id": 1}
    with pytest.raises(RateLimited):
        http.request("GET", "https://psa.example/api/tickets/1")
    assert len(responses.calls) == 1  # the PSA never saw the request over its window
