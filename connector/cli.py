"""flask CLI commands: the admin API's operations for operators, migrations, the sweep, and
the production worker."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, pass_script_info, with_appcontext

import adapters
from connector import tenants as tenant_ops
from connector.errors import APIError

tenants_cli = AppGroup("tenants", help="Create and inspect tenants.")
members_cli = AppGroup("members", help="Add members to a tenant.")


def _fail(exc: APIError) -> None:
    raise click.ClickException(f"{exc.code}: {exc.message}")


@tenants_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--vendor", required=True, type=click.Choice(list(adapters.vendors())))
@click.option(
    "--status",
    "statuses",
    multiple=True,
    required=True,
    help="A PSA status that means escalated (repeat for several).",
)
@click.option("--language", default="en", show_default=True)
def create_tenant(
    slug: str, name: str, vendor: str, statuses: tuple[str, ...], language: str
) -> None:
    """Create a tenant."""
    if not tenant_ops.SLUG.match(slug):
        raise click.BadParameter("lower-case letters, digits and dashes", param_hint="SLUG")
    try:
        tenant = tenant_ops.create_tenant(slug, name, vendor, list(statuses), language)
    except APIError as exc:
        _fail(exc)
    click.echo(f"created tenant {tenant.slug}; webhook URL {tenant_ops.webhook_url(tenant)}")


@tenants_cli.command("update")
@click.argument("slug")
@click.option("--name")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="A PSA status that means escalated (repeat for several); replaces the current ones.",
)
@click.option("--language")
def update_tenant(
    slug: str, name: str | None, statuses: tuple[str, ...], language: str | None
) -> None:
    """Change a tenant's name, language or escalation statuses."""
    try:
        tenant = tenant_ops.update_tenant(
            tenant_ops.get_tenant(slug),
            name=name,
            escalation_statuses=list(statuses) or None,
            language=language,
        )
    except APIError as exc:
        _fail(exc)
    click.echo(f"updated tenant {tenant.slug}; trigger {tenant_ops.describe_trigger(tenant)}")


@tenants_cli.command("list")
def list_tenants() -> None:
    """List tenants."""
    from sqlalchemy import select

    from connector.db import session
    from connector.models import Tenant

    for tenant in session.scalars(select(Tenant).order_by(Tenant.slug)):
        connected = "connected" if tenant.connection else "not connected"
        click.echo(f"{tenant.slug}\t{tenant.vendor}\t{connected}\t{tenant.name}")


@tenants_cli.command("connect")
@click.argument("slug")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="FIELD=VALUE",
    required=True,
    help="A connection field; secrets are better given through the environment "
    "as BATON_<FIELD> to keep them out of shell history.",
)
def connect_tenant(slug: str, pairs: tuple[str, ...]) -> None:
    """Set a tenant's PSA connection."""
    import os

    values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    for key, value in os.environ.items():
        if key.startswith("BATON_") and value:
            values.setdefault(key[6:].lower(), value)
    try:
        tenant = tenant_ops.get_tenant(slug)
        tenant_ops.set_connection(tenant, values)
    except APIError as exc:
        _fail(exc)
    click.echo(json.dumps(tenant_ops.describe_connection(tenant), indent=2))
    click.echo(f"trigger {tenant_ops.describe_trigger(tenant)}")


@tenants_cli.command("install-webhook")
@click.argument("slug")
def install_webhook(slug: str) -> None:
    """Register Baton's webhook on the tenant's PSA."""
    try:
        click.echo(json.dumps(tenant_ops.install_webhook(tenant_ops.get_tenant(slug))))
    except APIError as exc:
        _fail(exc)


@members_cli.command("add")
@click.argument("slug")
@click.option("--psa-member-id", required=True)
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["technician", "engineer", "admin"]))
def add_member(slug: str, psa_member_id: str, name: str, email: str, role: str) -> None:
    """Add a member; prints its API token once."""
    try:
        member, token = tenant_ops.add_member(
            tenant_ops.get_tenant(slug),
            psa_member_id=psa_member_id,
            name=name,
            email=email,
            role=role,
        )
    except APIError as exc:
        _fail(exc)
    click.echo(f"member {member.id} token (shown once): {token}")


@click.command("db-upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply database migrations (the Procfile's release step)."""
    from connector.migrate import upgrade

    upgrade(current_app.extensions["baton"].engine)
    click.echo("database at head")


@click.command("sweep")
@with_appcontext
@click.option("--every", type=float, default=0, help="Repeat every N seconds (a clock process).")
def sweep_command(every: float) -> None:
    """Re-enqueue lost jobs; finish handoffs stuck past the deadline with the fallback."""
    import time

    from connector.db import session
    from connector.sweeper import sweep

    while True:
        report = sweep().as_dict()
        session.remove()
        click.echo(json.dumps(report))
        if every <= 0:
            return
        time.sleep(every)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
@pass_script_info
def worker_command(info: ScriptInfo, burst: bool) -> None:
    """Run an RQ worker on Baton's queues; the app is built before its first job."""
    from connector import jobs
    from connector.queue import QUEUE_NAMES, AppWorker, queue

    app = info.load_app()
    runtime = app.extensions["baton"]
    if runtime.settings.embedded:
        raise click.ClickException(
            "flask worker needs REDIS_URL: in embedded mode the web process runs the worker"
        )
    jobs.warm_up(app)
    queues = [queue(runtime.redis, name) for name in QUEUE_NAMES]
    AppWorker(queues, connection=runtime.redis, app=app).work(
        burst=burst, with_scheduler=True, logging_level="WARNING"
    )


@click.command("rotate-keys")
@with_appcontext
def rotate_keys() -> None:
    """Re-encrypt every stored secret under the first CONNECTOR_SECRET_KEY."""
    from sqlalchemy import select

    from connector.db import session
    from connector.models import Connection, RedactionPattern, Tenant

    box = tenant_ops.secret_box()
    count = 0
    for connection in session.scalars(select(Connection)):
        if connection.secrets_encrypted:
            connection.secrets_encrypted = box.rotate(connection.secrets_encrypted)
            count += 1
    for tenant in session.scalars(select(Tenant)):
        if tenant.chat_webhooks_encrypted:
            tenant.chat_webhooks_encrypted = box.rotate(tenant.chat_webhooks_encrypted)
            count += 1
    for pattern in session.scalars(select(RedactionPattern)):
        pattern.value_encrypted = box.rotate(pattern.value_encrypted)
        count += 1
    session.commit()
    click.echo(f"re-encrypted {count} stored secret blobs under the first key")


def register_cli(app: Flask) -> None:
    app.cli.add_command(tenants_cli)
    app.cli.add_command(members_cli)
    app.cli.add_command(db_upgrade)
    app.cli.add_command(sweep_command)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(worker_command)
