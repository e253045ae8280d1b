"""Tenants, their PSA connection and members: the operations the admin API and CLI share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import adapters
from adapters.base import AdapterError, AdapterOptions, PSAAdapter, PSAVendor
from connector.db import session
from connector.errors import APIError
from connector.models import ROLES, Connection, Member, Tenant
from connector.security import SecretBox, hash_token, new_api_token

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def secret_box() -> SecretBox:
    return current_app.extensions["baton"].secret_box


def get_tenant(slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise APIError(404, "unknown_tenant", f"no tenant {slug!r}")
    return tenant


def create_tenant(
    slug: str, name: str, vendor: str, escalation_statuses: list[str], language: str = "en"
) -> Tenant:
    if vendor not in adapters.vendors():
        raise APIError(
            422, "invalid_request", f"vendor: must be one of {sorted(adapters.vendors())}"
        )
    tenant = Tenant(
        slug=slug,
        name=name,
        vendor=vendor,
        escalation_statuses=list(escalation_statuses),
        language=language,
    )
    session.add(tenant)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise APIError(409, "duplicate_slug", f"a tenant {slug!r} already exists") from None
    return tenant


def set_connection(tenant: Tenant, values: Mapping[str, Any]) -> Connection:
    """Store the vendor's fields; secrets encrypted, and a blank secret keeps the stored one."""
    fields = adapters.vendor(tenant.vendor).fields
    known = {f.name for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise APIError(422, "invalid_request", f"{unknown[0]}: unknown field for {tenant.vendor}")
    connection = tenant.connection or Connection(tenant_id=tenant.id, settings={})
    box = secret_box()
    stored_secrets = box.decrypt_json(connection.secrets_encrypted)
    plain: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for field in fields:
        value = values.get(field.name)
        value = value.strip() if isinstance(value, str) else value
        if field.secret:
            if value:
                secrets[field.name] = value
            elif field.name in stored_secrets:
                secrets[field.name] = stored_secrets[field.name]
        elif value:
            plain[field.name] = value
        if field.required and not (plain.get(field.name) or secrets.get(field.name)):
            raise APIError(422, "invalid_request", f"{field.name}: missing ({field.label})")
    connection.settings = plain
    connection.secrets_encrypted = box.encrypt_json(secrets)
    session.add(connection)
    session.commit()
    session.refresh(tenant)
    return connection


def connection_settings(tenant: Tenant) -> dict[str, str]:
    """The connection's plain settings (no secrets): what says which dialect a tenant speaks."""
    return dict(tenant.connection.settings or {}) if tenant.connection else {}


def psa_vendor(tenant: Tenant) -> PSAVendor:
    """The vendor whose screens, ids and webhooks the tenant has (a sandbox speaks one)."""
    return adapters.speaking(tenant.vendor, connection_settings(tenant))


def connection_values(tenant: Tenant) -> dict[str, str]:
    """The decrypted settings an adapter is built with. Never returned over the API."""
    connection = tenant.connection
    if connection is None:
        return {}
    values = dict(connection.settings or {})
    values.update(secret_box().decrypt_json(connection.secrets_encrypted))
    return values


def describe_connection(tenant: Tenant) -> dict[str, Any]:
    """What the API may show: plain settings, and for secrets only whether they are set."""
    connection = tenant.connection
    if connection is None:
        return {"configured": False, "settings": {}, "secrets": {}}
    stored = secret_box().decrypt_json(connection.secrets_encrypted)
    return {
        "configured": True,
        "settings": dict(connection.settings or {}),
        "secrets": {
            f.name: ("set" if f.name in stored else "not set")
            for f in adapters.vendor(tenant.vendor).fields
            if f.secret
        },
        "webhook": {
            "installed": bool(connection.webhook_id),
            "active": connection.webhook_active,
            "id": connection.webhook_id,
        },
    }


def adapter(tenant: Tenant) -> PSAAdapter:
    if tenant.connection is None:
        raise APIError(409, "not_connected", f"tenant {tenant.slug!r} has no PSA connection yet")
    settings = current_app.extensions["baton"].settings
    options = AdapterOptions(allow_private_urls=settings.allow_private_urls)
    return adapters.adapter_for(tenant.vendor, connection_values(tenant), options)


def new_member(
    tenant: Tenant, *, psa_member_id: str, name: str, email: str, role: str
) -> tuple[Member, str]:
    """A member added to the session (not committed) and its API token, which is shown this
    once and stored hashed."""
    if role not in ROLES:
        raise APIError(422, "invalid_request", f"role: must be one of {', '.join(ROLES)}")
    token = new_api_token()
    member = Member(
        tenant_id=tenant.id,
        psa_member_id=psa_member_id,
        name=name,
        email=email,
        role=role,
        token_hash=hash_token(token),
    )
    session.add(member)
    return member, token


def commit_members(tenant: Tenant, what: str) -> None:
    """Commit new members; one whose PSA id the tenant already has is a 409 naming `what`."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise APIError(
            409, "duplicate_member", f"{what} already exists in {tenant.slug!r}"
        ) from None


def add_member(
    tenant: Tenant, *, psa_member_id: str, name: str, email: str, role: str
) -> tuple[Member, str]:
    """Returns the member and its API token, which is shown this once and stored hashed."""
    member, token = new_member(
        tenant, psa_member_id=psa_member_id, name=name, email=email, role=role
    )
    commit_members(tenant, f"member {psa_member_id!r}")
    return member, token


def webhook_url(tenant: Tenant) -> str:
    settings = current_app.extensions["baton"].settings
    return f"{settings.public_url}/webhooks/{psa_vendor(tenant).key}/{tenant.slug}"


def install_webhook(tenant: Tenant) -> dict[str, Any]:
    """Register Baton's webhook on the PSA; a secret the PSA needs is kept encrypted."""
    psa = adapter(tenant)
    try:
        resolve_escalation_statuses(tenant, psa)
        result = psa.install_webhook(webhook_url(tenant))
    except AdapterError as exc:
        raise APIError(502, "psa_error", str(exc)) from None
    connection = tenant.connection
    assert connection is not None
    connection.webhook_id = result.id
    connection.webhook_url = result.url
    connection.webhook_active = result.active
    if result.secret:
        stored = secret_box().decrypt_json(connection.secrets_encrypted)
        stored["webhook_secret"] = result.secret
        connection.secrets_encrypted = secret_box().encrypt_json(stored)
    session.commit()
    return {"id": result.id, "url": result.url, "active": result.active, "created": result.created}


def resolve_escalation_statuses(tenant: Tenant, psa: PSAAdapter) -> None:
    """Store statuses the way the PSA's webhooks name them: an admin may type status names,
    but some PSAs' webhooks carry picklist ids, read here from the PSA's own list."""
    if psa.status_by != "id":
        return
    options = psa.list_statuses()
    by_name = {option.name.casefold(): option.id for option in options}
    ids = {option.id for option in options}
    resolved = []
    for status in tenant.escalation_statuses:
        if status in ids:
            resolved.append(status)
        elif status.casefold() in by_name:
            resolved.append(by_name[status.casefold()])
        else:
            raise APIError(
                422,
                "invalid_request",
                f"escalation_statuses: {status!r} is not a status of this PSA "
                f"(it has: {', '.join(sorted(o.name for o in options))})",
            )
    if resolved != tenant.escalation_statuses:
        tenant.escalation_statuses = resolved
        session.commit()
