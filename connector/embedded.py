"""Embedded mode: the worker thread, the sandbox PSA mounted at /sandbox, a sandbox tenant."""

from __future__ import annotations

import json
import logging

from flask import Flask
from sqlalchemy import select
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import adapters
from connector import tenants as tenant_ops
from connector.db import session
from connector.models import Member, Tenant

log = logging.getLogger(__name__)

SANDBOX_SLUG = "sandbox"
# Who the demo signs in as: members of the sandbox PSA (its corpus's technicians and a senior).
SANDBOX_MEMBERS = (
    ("sseniorr", "Sam Senior", "sam.senior@example.com", "engineer"),
    ("admin", "Alex Admin", "alex.admin@example.com", "admin"),
    ("kpatel", "Kiran Patel", "kiran.patel@example.com", "technician"),
)


SWEEP_EVERY_SECONDS = 30


def start_worker(app: Flask) -> None:
    from connector import jobs
    from connector.queue import EmbeddedWorker

    runtime = app.extensions["baton"]
    jobs.warm_up(app)
    runtime.worker = EmbeddedWorker(
        runtime.redis, app, sweep=lambda: _sweep_once(app), sweep_every_seconds=SWEEP_EVERY_SECONDS
    ).start()


def _sweep_once(app: Flask) -> None:
    """Embedded mode's clock: the same sweep `flask sweep --every` runs in production."""
    from connector.db import session as db_session
    from connector.sweeper import sweep

    with app.app_context():
        try:
            sweep()
        finally:
            db_session.remove()


def mount_sandbox(app: Flask) -> None:
    from adapters.sandbox import SandboxStore, register_webhook, sandbox_wsgi_app

    runtime = app.extensions["baton"]
    public_base = f"{runtime.settings.public_url}/sandbox"
    store = SandboxStore()
    runtime.extras["sandbox_store"] = store
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/sandbox": sandbox_wsgi_app(store, public_base)}
    )
    with app.app_context():
        tenant = seed_sandbox_tenant(app, public_base)
        # The sandbox lives in this process and serves nothing yet, so Baton's webhook is
        # registered directly; `webhooks/install` does the same against a sandbox on its port.
        settings = tenant_ops.connection_settings(tenant)
        secret = register_webhook(store, settings, tenant_ops.webhook_url(tenant))
        if secret:
            tenant_ops.set_connection(tenant, {**settings, "webhook_secret": secret})


def seed_sandbox_tenant(app: Flask, public_base: str) -> Tenant:
    """Create the sandbox tenant and its members once; keep member tokens under instance/.
    The sandbox speaks CONNECTOR_SANDBOX_DIALECT, else the dialect chosen in the console, else
    its first one; its "Escalated" (named as that dialect's webhooks name it) is the trigger."""
    from adapters.sandbox import escalated_status

    tenant = session.scalar(select(Tenant).where(Tenant.slug == SANDBOX_SLUG))
    if tenant is None:
        tenant = tenant_ops.create_tenant(
            SANDBOX_SLUG, "Sandbox MSP", adapters.vendor("sandbox").key, ["Escalated"], "en"
        )
    chosen = app.extensions["baton"].settings.sandbox_dialect
    dialect = chosen or tenant_ops.connection_settings(tenant).get("dialect", "")
    connection = {"site": public_base, **({"dialect": dialect} if dialect else {})}
    tenant_ops.set_connection(tenant, connection)
    # The store starts afresh: nothing is served yet to read its statuses from.
    tenant.escalation_statuses = [escalated_status(connection)]
    session.commit()
    tokens_path = app.extensions["baton"].settings.instance_path / "sandbox-members.json"
    tokens: dict[str, str] = json.loads(tokens_path.read_text()) if tokens_path.exists() else {}
    for psa_id, name, email, role in SANDBOX_MEMBERS:
        exists = session.scalar(
            select(Member).where(Member.tenant_id == tenant.id, Member.psa_member_id == psa_id)
        )
        if exists is None:
            _member, tokens[psa_id] = tenant_ops.add_member(
                tenant, psa_member_id=psa_id, name=name, email=email, role=role
            )
    tokens_path.write_text(json.dumps(tokens, indent=2))
    tokens_path.chmod(0o600)
    return tenant
