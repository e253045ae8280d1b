"""Streaming: how soon a senior who picks an escalation up can read its handoff, streamed
against not streamed, with the model writing at a realistic pace.

    .venv/bin/python bench/streaming.py [--count 20] [--rate 1] [--ttft 0.8] [--pace 60]

The stack of bench/pipeline.py (the sandbox PSA in its own process, gunicorn, --workers rq
workers, PostgreSQL and Redis), run twice: once with CONNECTOR_AI_STREAM=true, once false.
The fake Anthropic server runs inside this script, so that it can say when it sent each
field: it answers with tests/fakes/handoffs.py's handoff for ticket 104512 (about 400 output
tokens), after --ttft seconds to the first token and then --pace tokens a second; not
streamed, the same answer comes whole after as long as writing it takes.

A senior, played by this script as the panel does, listens on GET /api/v1/stream; when an
escalation arrives it claims it at once (the pick-up), and on every event about it re-reads
GET /api/v1/escalations/<id>, as handoff.js does. Printed per mode: pick-up -> the first
field readable, pick-up -> the complete handoff; streamed, also how long after the fake
sent a field the senior could read it whole (the target: the first within 300 ms).
Rendering in the browser is not counted (a few ms; see tests/browser/test_streaming.py).
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from _harness import (
    Stack,
    baton_env,
    connect_tenant,
    corpus_rows,
    free_port,
    header,
    migrate,
    ms,
    percentile,
    scratch_database,
    scratch_redis,
    start_gunicorn,
    start_rq_workers,
    start_sandbox,
    verdict,
    wait_idle,
)
from pipeline import escalate_at_rate

from adapters.connectwise.sandbox.state import SANDBOX_COMPANY
from connector.summary import HandoffDraft
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.handoffs import READY_PAYLOAD
from tests.integration.panel_setup import SSEReader, add_member

TARGET_FIRST_FIELD = 0.300
FIELDS = list(HandoffDraft.model_fields)  # in the order the model writes them
TOKENS = len(json.dumps(READY_PAYLOAD)) // 4  # as the fake counts them


@dataclass
class Watched:
    """What the senior saw of one escalation: (time.time(), handoff) after each re-read."""

    picked_up: float = 0.0
    ticket: str = ""
    saves: int = 0  # handoff.writing events: one per save of the fields written so far
    reads: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def first(self, seen: Callable[[dict[str, Any]], bool]) -> float | None:
        """When a read first showed what `seen` looks for, after the pick-up."""
        return next((at - self.picked_up for at, handoff in self.reads if seen(handoff)), None)

    @property
    def final(self) -> dict[str, Any] | None:
        return self.reads[-1][1] if self.reads else None


class Senior:
    """Claims every escalation the moment it arrives, then re-reads it on each of its events."""

    def __init__(self, base: str, headers: dict[str, str]):
        self.base, self.headers = base, headers
        self.http = requests.Session()
        self.http.headers.update(headers)
        self.watched: dict[int, Watched] = {}
        self.pool = ThreadPoolExecutor(16)
        self.lock = threading.Lock()
        self.stream = SSEReader(f"{base}/api/v1/stream", headers)
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.stopping = threading.Event()
        self.thread.start()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            try:
                event = self.stream.next_event(timeout=1.0)
            except (AssertionError, queue.Empty):  # a quiet second: check for stop()
                continue
            escalation_id = json.loads(event.get("data") or "{}").get("escalation_id")
            if event["event"] == "escalation.created":
                self.pool.submit(self._pick_up, escalation_id)
            elif event["event"].startswith("handoff.") and escalation_id in self.watched:
                self.watched[escalation_id].saves += event["event"] == "handoff.writing"
                self.pool.submit(self._read, escalation_id)

    def _pick_up(self, escalation_id: int) -> None:
        with self.lock:
            watched = self.watched[escalation_id] = Watched()
        self.http.post(f"{self.base}/api/v1/escalations/{escalation_id}/claim", timeout=30)
        watched.picked_up = time.time()
        self._read(escalation_id)

    def _read(self, escalation_id: int) -> None:
        answer = self.http.get(f"{self.base}/api/v1/escalations/{escalation_id}", timeout=30)
        at, view = time.time(), answer.json()
        with self.lock:
            watched = self.watched[escalation_id]
            watched.ticket = view["ticket"]["id"]
            watched.reads.append((at, view["handoff"]))

    def done(self) -> int:
        with self.lock:
            return sum(1 for w in self.watched.values() if w.final and complete(w.final))

    def stop(self) -> None:
        self.stopping.set()
        self.stream.close()
        self.thread.join(5)
        self.pool.shutdown(wait=True)


def run(args: argparse.Namespace, streamed: bool) -> tuple[Senior, FakeAnthropic]:
    warmup = args.workers
    rows = corpus_rows(warmup + args.count, first_id=910_000 if streamed else 920_000)
    port = free_port()
    fake = FakeAnthropic().start()
    with scratch_database() as database_url, scratch_redis() as redis_url, Stack() as stack:
        sandbox, _process = start_sandbox(stack, rows)
        env = baton_env(
            database_url,
            redis_url,
            f"http://127.0.0.1:{port}",
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY="bench-fake-key",
            CONNECTOR_AI_STREAM="true" if streamed else "false",
            CONNECTOR_AI_DEADLINE_SECONDS="60",
        )
        migrate(env)
        web = start_gunicorn(stack, env, port)
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {env['CONNECTOR_ADMIN_TOKEN']}"}
        connect_tenant(
            base, env["CONNECTOR_ADMIN_TOKEN"], f"{sandbox}/connectwise", SANDBOX_COMPANY
        )
        _id, headers = add_member(requests, admin, "bench", "senior", "engineer", base=base)
        workers = start_rq_workers(stack, env, args.workers)
        wait_idle([web.pid, *(w.pid for w in workers)])

        # Warm-up at full speed: every worker's first job builds its app (not measured).
        fake.set_mode("answer", payload=READY_PAYLOAD)
        escalate_at_rate(sandbox, rows[:warmup], rate=10.0)
        wait_terminal(base, headers, warmup, timeout=120)
        fake.reset()

        fake.set_mode("answer", payload=READY_PAYLOAD, ttft=args.ttft, pace=args.pace)
        senior = Senior(base, headers)
        time.sleep(0.5)  # the stream is open before the first escalation
        escalate_at_rate(sandbox, rows[warmup:], args.rate)
        deadline = time.monotonic() + args.count / args.rate + 90
        while senior.done() < args.count and time.monotonic() < deadline:
            time.sleep(0.2)
        senior.stop()
    fake.stop()
    return senior, fake


def wait_terminal(base: str, headers: dict[str, str], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = requests.get(
            f"{base}/api/v1/escalations?state=all&limit=200", headers=headers, timeout=30
        ).json()["items"]
        if sum(1 for i in items if i["handoff"]["state"] != "pending") >= count:
            return
        time.sleep(0.3)
    raise TimeoutError("the warm-up escalations did not finish")


def readable(handoff: dict[str, Any]) -> bool:
    return any(handoff[name] for name in FIELDS)


def complete(handoff: dict[str, Any]) -> bool:
    return handoff["state"] in ("ready", "fallback")


def spread(label: str, values: list[float]) -> str:
    if not values:
        return f"   {label}: n/a"
    return (
        f"   {label}: p50 {ms(percentile(values, 50))}, p95 {ms(percentile(values, 95))}, "
        f"max {ms(max(values))} (n = {len(values)})"
    )


def field_lags(senior: Senior, fake: FakeAnthropic) -> dict[str, list[float]]:
    """Per field: the fake sent it whole -> the senior's first read that showed it whole."""
    sent: dict[str, dict[str, float]] = {}  # ticket -> field -> when the fake sent it whole
    for request in fake.message_requests():
        ticket = re.search(r"^Number: (\S+)$", request.body["messages"][0]["content"], re.M)
        if ticket:
            sent[ticket.group(1)] = request.written
    lags: dict[str, list[float]] = {name: [] for name in FIELDS}
    for watched in senior.watched.values():
        final, written = watched.final, sent.get(watched.ticket, {})
        if final is None or final["state"] != "ready":
            continue
        for name in FIELDS:
            whole = final[name]
            seen = watched.first(lambda handoff, n=name, v=whole: handoff[n] == v)
            if seen is not None and name in written:
                lags[name].append(watched.picked_up + seen - written[name])
    return lags


def report(results: dict[bool, tuple[Senior, FakeAnthropic]]) -> None:
    first_field: dict[bool, list[float]] = {}
    for streamed, (senior, fake) in results.items():
        watched = list(senior.watched.values())
        states: dict[str, int] = {}
        for w in watched:
            state = w.final["state"] if w.final else "unread"
            states[state] = states.get(state, 0) + 1
        first_field[streamed] = [t for w in watched if (t := w.first(readable)) is not None]
        whole = [t for w in watched if (t := w.first(complete)) is not None]
        print(f"-- {'streamed' if streamed else 'not streamed'}: {len(watched)} picked up; "
              f"states {states}; {len(fake.message_requests())} model calls")  # fmt: skip
        print(spread("pick-up -> first field readable", first_field[streamed]))
        print(spread("pick-up -> complete handoff", whole))
        if streamed:
            saves = sorted(w.saves for w in watched)
            print(f"   saves of the partial fields per handoff: median {saves[len(saves) // 2]}, "
                  f"max {saves[-1]} (for {TOKENS} output tokens)")  # fmt: skip
    lags = field_lags(*results[True])
    print("-- streamed: the fake sent a field whole -> the senior read it whole")
    for name in FIELDS:
        print("  " + spread(name, lags[name]))
    print("-- against the target")
    first = lags[FIELDS[0]]
    p95 = percentile(first, 95)
    met = bool(first) and max(first) <= TARGET_FIRST_FIELD
    print(
        f"   the first field ({FIELDS[0]}) readable within {ms(TARGET_FIRST_FIELD)} of the "
        f"model writing it: p95 {ms(p95)}, max {ms(max(first, default=float('nan')))} -> "
        f"{verdict(met)}"
    )
    sooner = percentile(first_field[False], 50) - percentile(first_field[True], 50)
    print(f"   streamed, the first field is readable {sooner:.1f} s sooner (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20, help="measured escalations per mode")
    parser.add_argument("--rate", type=float, default=1.0, help="escalations per second")
    parser.add_argument("--ttft", type=float, default=0.8, help="the fake's time to first token")
    parser.add_argument("--pace", type=float, default=60.0, help="output tokens a second")
    parser.add_argument("--workers", type=int, default=12, help="rq worker processes")
    args = parser.parse_args()
    header("bench/streaming: pick-up -> first field and complete handoff, streamed or not")
    print(
        f"{args.count} escalations per mode at {args.rate:g}/s; the model: time to first token "
        f"{args.ttft:g} s, {args.pace:g} output tokens/s, {TOKENS} output tokens (writing "
        f"takes {args.ttft + TOKENS / args.pace:.1f} s); {args.workers} rq workers",
        flush=True,
    )
    results = {streamed: run(args, streamed) for streamed in (True, False)}
    report(results)


if __name__ == "__main__":
    main()
