"""Tenants: many MSPs on one deployment, one bursting, the others steady (issue 19).

    .venv/bin/python bench/tenants.py [--tenants 4] [--burst 30] [--steady 5] [--workers 3]
        [--latency 1.0] [--psa-latency 0.05] [--fair-psa-latency 0] [--psa-workers 8]

Each tenant has its own sandbox PSA (served in this process, speaking Autotask, which refuses
a 4th concurrent request on an endpoint with its "thread threshold exceeded" error, as
Autotask does), answering each request after --psa-latency seconds as a real PSA would.
Baton is the real stack: gunicorn, `flask worker` processes, PostgreSQL, Redis, and the fake
Anthropic server answering after --latency seconds.

1. Fairness, --workers workers, limiter on: the burster escalates --burst tickets at once; the
   steady tenants each escalate --steady, one every --steady-every seconds, staggered, from
   half a second in (together about one a second: what 3 workers serve beside the burst). Time to
   terminal handoff (webhook received -> handoff ready) per tenant, p50/p95/max.
2. PSA refusals, --psa-workers workers: the burster's burst alone, with the PSA limiter off
   (CONNECTOR_PSA_LIMITER=false), then on; the sandbox's thread-threshold refusals counted.
3. One worker process's memory (RSS and PSS, after the runs) and how many this machine holds.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from _harness import (
    Child,
    Stack,
    baton_env,
    corpus_rows,
    free_port,
    header,
    migrate,
    ms,
    percentile,
    scratch_database,
    scratch_redis,
    start_fake_anthropic,
    start_gunicorn,
    start_rq_workers,
    verdict,
)
from pipeline import rows_for, spread, wait_done

from adapters.autotask.sandbox.state import autotask_state
from adapters.sandbox import SandboxServer, SandboxStore
from adapters.sandbox.vendor import dialects, sandbox_of

TARGET_OTHER_TENANT_SECONDS = 3.5
DIALECT = "autotask"
ROWS_PER_TENANT = 200


class SlowPSA:
    """WSGI middleware: every request to the sandbox answers after `seconds`, as over a WAN."""

    def __init__(self, app: Any, seconds: float):
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if "/ATServicesRest/" in environ.get("PATH_INFO", ""):
            time.sleep(self.seconds)
        return self.app(environ, start_response)


class Tenant:
    def __init__(self, index: int, psa_latency: float):
        self.slug = f"msp-{index}"
        first = 800_000 + index * 10_000
        self.rows = corpus_rows(ROWS_PER_TENANT, first_id=first)
        self.store = SandboxStore(self.rows)
        self.server = SandboxServer(self.store)
        self.psa = SlowPSA(self.server._server.app, psa_latency)
        self.server._server.app = self.psa
        self.next_row = 0

    def take(self, count: int) -> list[dict[str, Any]]:
        rows = self.rows[self.next_row : self.next_row + count]
        assert len(rows) == count, f"{self.slug}: out of sandbox tickets"
        self.next_row += count
        return rows

    def escalate(self, row: dict[str, Any]) -> None:
        pressed = requests.post(
            f"{self.server.url}/tickets/{row['id']}/escalate", json={}, timeout=10
        )
        pressed.raise_for_status()

    @property
    def refusals(self) -> int:
        return autotask_state(self.store).refused

    def reset_refusals(self) -> None:
        state = autotask_state(self.store)
        with state.lock:
            state.refused = 0


def connect(base_url: str, admin_token: str, tenant: Tenant) -> None:
    """Create the tenant over the admin API, aim it at its sandbox in Autotask's dialect and
    install the webhook, as an admin would."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {admin_token}"

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> None:
        answer = api.request(method, f"{base_url}/api/v1/admin{path}", json=body, timeout=60)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")

    escalated = sandbox_of(dialects()[DIALECT]).escalated_status
    call(
        "POST",
        "/tenants",
        {
            "slug": tenant.slug,
            "name": tenant.slug,
            "vendor": "sandbox",
            "escalation_statuses": [escalated],
        },
    )
    call(
        "PUT", f"/tenants/{tenant.slug}/connection", {"site": tenant.server.url, "dialect": DIALECT}
    )
    call("POST", f"/tenants/{tenant.slug}/webhooks/install")


@contextlib.contextmanager
def workers(stack: Stack, env: dict[str, str], count: int) -> Iterator[list[Child]]:
    children = start_rq_workers(stack, env, count)
    try:
        yield children
    finally:
        for child in children:
            child.stop()
            stack.children.remove(child)


def times_to_terminal(database_url: str, tickets: list[str]) -> list[float]:
    return [
        (r["generated_at"] - r["received_at"]).total_seconds()
        for r in rows_for(database_url, tickets)
        if r["generated_at"] is not None
    ]


def warm_up(args: argparse.Namespace, database_url: str, tenants: list[Tenant]) -> None:
    """Each tenant's first jobs on a worker read the PSA's field lists once: not measured."""
    rows = []
    for tenant in tenants:
        tenant.psa.seconds = args.fair_psa_latency
        for row in tenant.take(args.workers):
            tenant.escalate(row)
            rows.append(str(row["id"]))
    wait_done(database_url, rows, timeout=300)
    alone = tenants[-1].take(1)
    tenants[-1].escalate(alone[0])
    wait_done(database_url, [str(alone[0]["id"])], timeout=60)
    took = times_to_terminal(database_url, [str(alone[0]["id"])])
    print(
        f"-- warm-up: {len(rows)} escalations; then one alone on idle workers: "
        f"{ms(took[0]) if took else 'n/a'} to terminal (the floor)",
        flush=True,
    )


def fairness(args: argparse.Namespace, database_url: str, tenants: list[Tenant]) -> bool:
    burster, steady = tenants[0], tenants[1:]
    burst_rows = burster.take(args.burst)
    steady_rows = {t.slug: t.take(args.steady) for t in steady}
    for tenant in tenants:
        tenant.reset_refusals()

    def steady_tenant(tenant: Tenant, offset: float) -> None:
        time.sleep(0.5 + offset)  # staggered: the steady tenants do not all escalate at once
        for row in steady_rows[tenant.slug]:
            tenant.escalate(row)
            time.sleep(args.steady_every)

    threads = [
        threading.Thread(target=steady_tenant, args=(t, i * args.steady_every / len(steady)))
        for i, t in enumerate(steady)
    ]
    for thread in threads:
        thread.start()
    for row in burst_rows:
        burster.escalate(row)
    for thread in threads:
        thread.join()
    every = [str(r["id"]) for r in burst_rows] + [
        str(r["id"]) for rows in steady_rows.values() for r in rows
    ]
    done = wait_done(database_url, every, timeout=300)
    print(
        f"-- 1. fairness: {burster.slug} bursts {args.burst}, {len(steady)} tenants send "
        f"{args.steady} each, one every {args.steady_every:.0f} s; {args.workers} workers, "
        f"model {args.latency:.1f} s, "
        f"PSA {args.fair_psa_latency * 1000:.0f} ms a request; {done}/{len(every)} done"
    )
    burst_times = times_to_terminal(database_url, [str(r["id"]) for r in burst_rows])
    print(spread(f"{burster.slug} (bursting, {len(burst_times)})", burst_times))
    others: list[float] = []
    for tenant in steady:
        own = times_to_terminal(database_url, [str(r["id"]) for r in steady_rows[tenant.slug]])
        others += own
        print(spread(f"{tenant.slug} (steady, {len(own)})", own))
    worst = max(others, default=float("nan"))
    met = worst <= TARGET_OTHER_TENANT_SECONDS
    print(
        f"   every other tenant's handoff within {TARGET_OTHER_TENANT_SECONDS} s of its "
        f"webhook: slowest {ms(worst)}, p95 {ms(percentile(others, 95))} -> {verdict(met)}"
    )
    print(f"   PSA refusals (thread threshold): {sum(t.refusals for t in tenants)}", flush=True)
    return met


def refusals(
    args: argparse.Namespace, stack: Stack, env: dict[str, str], database_url: str, burster: Tenant
) -> bool:
    print(
        f"-- 2. PSA refusals: {burster.slug} bursts {args.burst} with {args.psa_workers} "
        "workers (Autotask: 3 concurrent requests per endpoint), "
        f"PSA {args.psa_latency * 1000:.0f} ms a request",
        flush=True,
    )
    counted = {}
    burster.psa.seconds = args.psa_latency
    for limiter in ("false", "true"):
        rows = burster.take(args.burst)
        burster.reset_refusals()
        with workers(stack, {**env, "CONNECTOR_PSA_LIMITER": limiter}, args.psa_workers):
            for row in rows:
                burster.escalate(row)
            done = wait_done(database_url, [str(r["id"]) for r in rows], timeout=300)
        counted[limiter] = burster.refusals
        took = times_to_terminal(database_url, [str(r["id"]) for r in rows])
        label = "on " if limiter == "true" else "off"
        print(
            f"   limiter {label}: {counted[limiter]} refusals; {done}/{len(rows)} done; "
            + spread("time to terminal", took).strip(),
            flush=True,
        )
    met = counted["true"] == 0
    print(f"   refusals with the limiter on are 0 -> {verdict(met)}")
    return met


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB of one process, from /proc/<pid>/smaps_rollup."""
    found = {"Rss:": 0, "Pss:": 0}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(" ")
        if name in found:
            found[name] = int(rest.split()[0])
    return found["Rss:"], found["Pss:"]


def memory(children: list[Child]) -> None:
    sizes = [memory_kib(c.pid) for c in children]
    rss = max(s[0] for s in sizes) / 1024
    pss = max(s[1] for s in sizes) / 1024
    available = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) // 1024
    print(
        f"-- 3. one worker process after its jobs: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB "
        f"(largest of {len(children)}); {available} MiB available now -> room for about "
        f"{int(available / pss)} more at this PSS (memory only; see the sizing rule)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--steady", type=int, default=5, help="escalations per steady tenant")
    parser.add_argument("--steady-every", type=float, default=3.0, help="seconds between them")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--psa-workers", type=int, default=8, help="workers for the refusals")
    parser.add_argument("--latency", type=float, default=1.0, help="the fake model's, seconds")
    parser.add_argument("--psa-latency", type=float, default=0.05, help="seconds a request")
    parser.add_argument(
        "--fair-psa-latency",
        type=float,
        default=0.0,
        help="seconds a request in the fairness run (0: the sandbox on loopback, as issue 19 "
        "measured the 13-14 s)",
    )
    args = parser.parse_args()
    header("bench/tenants: one tenant bursting, the others steady, on shared workers")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the sandboxes' request lines
    tenants = [Tenant(i, args.fair_psa_latency) for i in range(args.tenants)]
    try:
        with scratch_database() as database_url, scratch_redis() as redis_url, Stack() as stack:
            model = start_fake_anthropic(stack, args.latency)
            port = free_port()
            env = baton_env(
                database_url,
                redis_url,
                f"http://127.0.0.1:{port}",
                ANTHROPIC_BASE_URL=model,
                ANTHROPIC_API_KEY="bench-key",
            )
            migrate(env)
            start_gunicorn(stack, env, port)
            for tenant in tenants:
                connect(f"http://127.0.0.1:{port}", env["CONNECTOR_ADMIN_TOKEN"], tenant)
            with workers(stack, env, args.workers) as fair_workers:
                warm_up(args, database_url, tenants)
                fair = fairness(args, database_url, tenants)
                memory(fair_workers)
            limited = refusals(args, stack, env, database_url, tenants[0])
            print(f"== done: fairness {verdict(fair)}, refusals {verdict(limited)}")
    finally:
        for tenant in tenants:
            tenant.server.stop()
        print(f"finished, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
