"""flask CLI commands: the admin API's operations for operators, migrations, the sweep, and
the production worker."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, pass_script_info, with_appcontext

import adapters
from connector import psa_members
from connector import tenants as tenant_ops
from connector.errors import APIError
from connector.models import ROLES

tenants_cli = AppGroup("tenants", help="Create and inspect tenants.")
members_cli = AppGroup("members", help="Add members to a tenant, from its PSA or by hand.")


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
@click.option("--role", required=True, type=click.Choice(ROLES))
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


@members_cli.command("psa")
@click.argument("slug")
@click.option("--include-inactive", is_flag=True, help="Also the people the PSA has deactivated.")
def list_psa_members(slug: str, include_inactive: bool) -> None:
    """List the PSA's people: PSA id, name, email, state, and role once added."""
    try:
        tenant = tenant_ops.get_tenant(slug)
        listed = psa_members.list_views(tenant, tenant_ops.adapter(tenant), include_inactive)
    except APIError as exc:
        _fail(exc)
    for person in listed:
        state = "active" if person["active"] else "deactivated"
        added = f"member as {person['role']}" if person["member_id"] else "not added"
        click.echo("\t".join((person["psa_member_id"], person["name"], person["email"] or "-",
                               state, added)))  # fmt: skip


@members_cli.command("import")
@click.argument("slug")
@click.argument("picks", nargs=-1, metavar="[PSA_ID[=ROLE]]...")
@click.option("--role", default="technician", show_default=True, type=click.Choice(ROLES),
              help="The role of each PSA_ID given without one.")  # fmt: skip
@click.option("--all-active", is_flag=True, help="Every active person not yet a member.")
def import_members(slug: str, picks: tuple[str, ...], role: str, all_active: bool) -> None:
    """Add the PSA's people, all or none; prints each one's API token once."""
    chosen = []
    for psa_id, _, given in (pick.partition("=") for pick in picks):
        if given and given not in ROLES:
            raise click.BadParameter(
                f"{given!r} is not one of {', '.join(ROLES)}", param_hint=psa_id
            )
        chosen.append({"psa_member_id": psa_id, "role": given or role})
    try:
        tenant = tenant_ops.get_tenant(slug)
        psa = tenant_ops.adapter(tenant)
        if all_active:
            named = {pick["psa_member_id"].casefold() for pick in chosen}
            chosen += [
                {"psa_member_id": p["psa_member_id"], "role": role}
                for p in psa_members.list_views(tenant, psa, include_inactive=False)
                if p["member_id"] is None and p["psa_member_id"].casefold() not in named
            ]
        if not chosen:
            raise click.UsageError("name PSA ids to add, or give --all-active")
        made = psa_members.add_from_psa(tenant, psa, chosen)
    except APIError as exc:
        _fail(exc)
    for member, token in made:
        click.echo(f"added {member.psa_member_id} ({member.name}) as {member.role}: "
                   f"member {member.id}, token (shown once) {token}")  # fmt: skip


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


@click.command("flush-audit")
@with_appcontext
@click.option("--every", type=float, default=0, help="Repeat every N seconds.")
def flush_audit_command(every: float) -> None:
    """Copy the webhook audit rows queued in Redis into the database (workers do it between
    jobs; this is for a deployment, or a benchmark, that runs none)."""
    import time

    from connector import delivery_audit
    from connector.db import session

    runtime = current_app.extensions["baton"]
    while True:
        copied = delivery_audit.flush(runtime.redis)
        session.remove()
        if every <= 0:
            click.echo(json.dumps({"audit_rows_flushed": copied}))
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
    app.cli.add_command(flush_audit_command)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(worker_command)
