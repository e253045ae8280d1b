"""Profile the webhook path in one process: where a delivery's CPU time goes.

    .venv/bin/python bench/profile_ingest.py [--deliveries 300]

The same app as gunicorn serves (create_app with the same settings), the same real
PostgreSQL (scratch database) and Redis (db 14), the same signed ConnectWise callbacks as
bench/ingest.py, sent one at a time through Flask's test client under pyinstrument (not a
project dependency: `.venv/bin/pip install pyinstrument`). Prints CPU ms per delivery and the
profile's call tree.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from _harness import baton_env, header, migrate, scratch_database, scratch_redis

from adapters.connectwise.sandbox.callbacks import content_signature, key_url
from adapters.connectwise.sandbox.state import (
    SANDBOX_COMPANY,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    connectwise_state,
)
from adapters.sandbox import SandboxStore, serve_sandbox

SLUG = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument(
        "--no-profile", action="store_true", help="only time (e.g. under py-spy record)"
    )
    parser.add_argument(
        "--ignored",
        action="store_true",
        help="only ignored deliveries (a status outside the trigger), the common case",
    )
    parser.add_argument(
        "--show-all", action="store_true", help="every frame, Flask's and libraries' too"
    )
    parser.add_argument("--quiet-logs", action="store_true", help="log WARNING and above only")
    args = parser.parse_args()
    from pyinstrument import Profiler

    header("bench/profile_ingest: one process, one delivery at a time, under pyinstrument")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    store = SandboxStore()
    sandbox = serve_sandbox(store)
    try:
        with scratch_database() as database_url, scratch_redis() as redis_url:
            env = baton_env(
                database_url,
                redis_url,
                "http://baton.invalid",
                CONNECTOR_WEBHOOK_RATE_LIMIT="10000000/minute",
            )
            migrate(env)
            from connector.app import create_app
            from connector.config import load_settings

            app = create_app(load_settings(env), start_worker=False)
            if args.quiet_logs:
                logging.getLogger().setLevel(logging.WARNING)
            else:  # as in gunicorn: INFO lines to stderr, here to a black hole
                for handler in logging.getLogger().handlers:
                    handler.stream = open("/dev/null", "w")  # type: ignore[attr-defined]  # noqa: SIM115
            client = app.test_client()
            admin = {"Authorization": f"Bearer {env['CONNECTOR_ADMIN_TOKEN']}"}
            client.post(
                "/api/v1/admin/tenants",
                json={
                    "slug": SLUG,
                    "name": "Bench",
                    "vendor": "connectwise",
                    "escalation_statuses": ["Escalated"],
                },
                headers=admin,
            )
            client.put(
                f"/api/v1/admin/tenants/{SLUG}/connection",
                json={
                    "site": sandbox.site("connectwise"),
                    "company_id": SANDBOX_COMPANY,
                    "public_key": SANDBOX_PUBLIC_KEY,
                    "private_key": SANDBOX_PRIVATE_KEY,
                    "client_id": "00000000-0000-4000-8000-000000000000",
                },
                headers=admin,
            )
            # A template callback, as bench/ingest.py: a genuine one from the sandbox's app.
            from adapters.connectwise.sandbox.render import ticket_json

            ticket = store.tickets()[0]
            where = key_url(store, sandbox.site("connectwise"))
            entity = ticket_json(store, ticket)
            signing_key = connectwise_state(store).signing_key

            def delivery(n: int) -> tuple[str, bytes, dict[str, str]]:
                kind = "In Progress" if args.ignored or n % 4 == 3 else "Escalated"
                tid = 5_000_000 + n
                body = json.dumps(
                    {
                        "MessageId": f"profile-{n}",
                        "FromUrl": "127.0.0.1",
                        "CompanyId": SANDBOX_COMPANY,
                        "MemberId": "kpatel",
                        "Action": "updated",
                        "Type": "ticket",
                        "ID": tid,
                        "Entity": json.dumps(
                            {**entity, "id": tid, "status": {**entity["status"], "name": kind}}
                        ),
                        "Metadata": {"key_url": where},
                    }
                ).encode()
                headers = {
                    "Content-Type": "application/json",
                    "x-content-signature": content_signature(body, signing_key),
                }
                return f"/webhooks/connectwise/{SLUG}?recordId={tid}", body, headers

            for n in range(20):  # warm-up: the signing key fetch, the codebase, pools
                url, body, headers = delivery(n)
                assert client.post(url, data=body, headers=headers).status_code in (200, 202)
            planned = [delivery(n) for n in range(20, 20 + args.deliveries)]
            started, used = time.perf_counter(), time.process_time()
            statuses = [client.post(u, data=b, headers=h).status_code for u, b, h in planned]
            wall, cpu = time.perf_counter() - started, time.process_time() - used
            profiler = Profiler(interval=0.001)
            if not args.no_profile:
                planned = [delivery(n) for n in range(100_000, 100_000 + args.deliveries)]
                profiler.start()
                for u, b, h in planned:
                    client.post(u, data=b, headers=h)
                profiler.stop()
            app.extensions["baton"].engine.dispose()
    finally:
        sandbox.stop()
    print(
        f"{args.deliveries} deliveries "
        f"({'all ignored' if args.ignored else '3 of 4 escalations'}), "
        "statuses "
        f"{ {s: statuses.count(s) for s in set(statuses)} }: {cpu / args.deliveries * 1000:.2f} "
        f"CPU ms and {wall / args.deliveries * 1000:.2f} wall ms per delivery (this process, "
        f"without the profiler)"
    )
    if not args.no_profile:
        print("the same number again under pyinstrument (wall-clock samples):")
        print(profiler.output_text(unicode=False, color=False, show_all=args.show_all))


if __name__ == "__main__":
    main()
