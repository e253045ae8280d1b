"""Tenants, their PSA connection and members: the operations the admin API and CLI share."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import adapters
from adapters.base import AdapterError, AdapterOptions, PanelSetup, PSAAdapter, PSAVendor
from adapters.http import PSALimiter, window_storage
from connector.db import session
from connector.errors import APIError
from connector.logs import step
from connector.models import ROLES, Connection, Member, Tenant
from connector.security import SecretBox, hash_token, new_api_token


class TenantRef(Protocol):
    """What the webhook path reads of a tenant: an ORM Tenant, or the per-process snapshot
    in connector.tenant_cache."""

    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...
    @property
    def escalation_statuses(self) -> list[str]: ...
    @property
    def escalation_status_ids(self) -> dict[str, str] | None: ...


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


def update_tenant(
    tenant: Tenant,
    *,
    name: str | None = None,
    escalation_statuses: list[str] | None = None,
    language: str | None = None,
) -> Tenant:
    """Change what is given; the statuses first, as the PSA may refuse them."""
    if escalation_statuses is not None:
        set_escalation_statuses(tenant, escalation_statuses)
    if name is not None:
        tenant.name = name
    if language is not None:
        tenant.language = language
    session.commit()
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
    # Resolved again: another PSA (or another instance of it) has its own ids.
    set_escalation_statuses(tenant, tenant.escalation_statuses, strict=False)
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
    runtime = current_app.extensions["baton"]
    settings = runtime.settings
    values = connection_values(tenant)
    options = AdapterOptions(
        allow_private_urls=settings.allow_private_urls,
        limiter=psa_limiter(tenant, values) if settings.psa_limiter else None,
    )
    return adapters.adapter_for(tenant.vendor, values, options)


def psa_limiter(tenant: Tenant, values: Mapping[str, str]) -> PSALimiter | None:
    """The limits the tenant's PSA declares, held in Redis for its connection (a sandbox is held
    to the limits of the vendor it speaks)."""
    runtime = current_app.extensions["baton"]
    spoken = adapters.speaking(tenant.vendor, values)
    if not spoken.request_windows and not spoken.max_concurrent_requests:
        return None
    return PSALimiter(
        runtime.redis,
        window_storage(runtime.settings.redis_url or "memory://"),
        f"tenant-{tenant.id}",
        windows=spoken.request_windows,
        max_concurrent=spoken.max_concurrent_requests,
    )


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
    """Register Baton's webhook on the PSA; a secret the PSA needs is kept encrypted. What the
    PSA's API could not do is left as steps for the admin."""
    psa = adapter(tenant)
    try:
        if psa.status_by == "id":
            store_trigger(tenant, *resolve_statuses(tenant.escalation_statuses, psa, strict=True))
        result = psa.install_webhook(webhook_url(tenant), tenant.escalation_statuses)
    except AdapterError as exc:
        raise APIError(502, "psa_error", str(exc)) from None
    connection = tenant.connection
    assert connection is not None
    connection.webhook_id = result.id[:128]  # a PSA with one webhook per board lists them all
    connection.webhook_url = result.url
    connection.webhook_active = result.active
    if result.secret:
        stored = secret_box().decrypt_json(connection.secrets_encrypted)
        stored["webhook_secret"] = result.secret
        connection.secrets_encrypted = secret_box().encrypt_json(stored)
    session.commit()
    return {
        "id": result.id,
        "url": result.url,
        "active": result.active,
        "created": result.created,
        # What is left to the admin, with the values to paste (a new credential, this once).
        "manual_steps": setup_steps(result.manual),
        "manual_note": result.manual.note if result.manual else "",
    }


def setup_steps(setup: PanelSetup | None) -> list[dict[str, Any]]:
    """Steps in the PSA with the values to paste, as the APIs and the CLI answer them."""
    if setup is None:
        return []
    return [
        {"text": step.text, "values": [{"label": k, "value": v} for k, v in step.values]}
        for step in setup.steps
    ]


# --- the escalation trigger ----------------------------------------------------------------
#
# An admin names statuses; a PSA whose webhooks carry status ids (adapter.status_by == "id")
# needs them as its ids. They are resolved from the PSA's own list where they are set, again
# when the connection changes, and, if the PSA could not be read then, on the first webhook.


def set_escalation_statuses(tenant: Tenant, statuses: list[str], *, strict: bool = True) -> None:
    """Set the trigger, resolved against the connected PSA. With `strict`, a name it does not
    list is a 422 listing its statuses and nothing changes; without, that name stays unresolved
    (the console shows it). A PSA that cannot be read keeps the names for the first webhook."""
    ids = None
    psa = _id_psa(tenant)
    if psa is not None:
        try:
            statuses, ids = resolve_statuses(statuses, psa, strict=strict)
        except AdapterError as exc:
            step(None, "statuses_unresolved", tenant=tenant.slug, error=str(exc)[:300])
    previous = list(tenant.escalation_statuses or [])
    store_trigger(tenant, statuses, ids)
    changed = sorted(previous) != sorted(tenant.escalation_statuses)
    if changed and (follows := _webhook_following_trigger(tenant)):
        rescope_webhook(tenant, follows)


def _webhook_following_trigger(tenant: Tenant) -> PSAAdapter | None:
    """The adapter, when the tenant's installed webhook is scoped by the trigger's statuses."""
    connection = tenant.connection
    if connection is None or not connection.webhook_id:
        return None
    try:
        psa = adapter(tenant)
    except (APIError, AdapterError, ValueError):
        return None
    return psa if psa.webhook_follows_trigger else None


def rescope_webhook(tenant: Tenant, psa: PSAAdapter) -> None:
    """The trigger changed: the webhook is installed again for the new statuses (a PSA that
    cannot be reached now keeps the old scope; the step is logged, and Install webhook in the
    console does it again)."""
    connection = tenant.connection
    assert connection is not None
    try:
        result = psa.install_webhook(webhook_url(tenant), tenant.escalation_statuses)
    except AdapterError as exc:
        step(
            None,
            "webhook_not_rescoped",
            level=logging.WARNING,
            tenant=tenant.slug,
            error=str(exc)[:300],
        )
        return
    connection.webhook_id = result.id[:128]
    connection.webhook_active = result.active
    session.commit()
    step(None, "webhook_rescoped", tenant=tenant.slug, webhook=connection.webhook_id)


def needs_resolution(tenant: TenantRef, psa: PSAAdapter, status: str) -> bool:
    """A webhook's status id is not in the trigger, whose names were never resolved."""
    if psa.status_by != "id" or tenant.escalation_status_ids is not None:
        return False
    return status.strip().casefold() not in {
        s.strip().casefold() for s in tenant.escalation_statuses
    }


def resolve_for_delivery(tenant: TenantRef, psa: PSAAdapter, status: str) -> bool:
    """When `needs_resolution`: read the PSA's list once and keep the ids; True when they were
    stored (a snapshot is stale then). Raises AdapterError when the PSA cannot be read."""
    if not needs_resolution(tenant, psa, status):
        return False
    stored = session.get(Tenant, tenant.id)  # the row itself: a snapshot cannot be saved
    if stored is None:
        return False
    store_trigger(stored, *resolve_statuses(stored.escalation_statuses, psa, strict=False))
    step(None, "statuses_resolved", tenant=stored.slug, ids=stored.escalation_status_ids)
    return True


def resolve_statuses(
    given: list[str], psa: PSAAdapter, *, strict: bool
) -> tuple[list[str], dict[str, str]]:
    """The statuses as the PSA names them, and {name: id} for each it lists (matched by id or
    by name, any case). With `strict`, one it does not list is a 422 naming those it has."""
    options = psa.list_statuses()
    names: list[str] = []
    ids: dict[str, str] = {}
    for status in given:
        wanted = status.strip()
        option = next((o for o in options if o.id == wanted), None) or next(
            (o for o in options if o.name.strip().casefold() == wanted.casefold()), None
        )
        if option is None and strict:
            problem = (
                f"{status!r} is not a status of this PSA "
                f"(it has: {', '.join(sorted(o.name for o in options))})"
            )
            raise APIError(
                422,
                "invalid_request",
                f"escalation_statuses: {problem}",
                fields={"escalation_statuses": [problem]},
            )
        name = option.name if option else wanted
        if name not in names:
            names.append(name)
        if option:
            ids[name] = option.id
    return names, ids


def trigger_values(tenant: TenantRef) -> set[str]:
    """What a webhook's status is compared with (any case): the names and their PSA ids."""
    values = set(tenant.escalation_statuses) | set((tenant.escalation_status_ids or {}).values())
    return {v.strip().casefold() for v in values}


def describe_trigger(tenant: TenantRef) -> str:
    """The configured statuses with the ids they resolved to, for the delivery audit."""
    ids = tenant.escalation_status_ids
    parts = []
    for name in tenant.escalation_statuses:
        if ids is None:
            parts.append(repr(name))
        elif name in ids:
            parts.append(f"{name!r} = id {ids[name]!r}")
        else:
            parts.append(f"{name!r} (not in the PSA's list)")
    return ", ".join(parts)


def store_trigger(tenant: Tenant, statuses: list[str], ids: dict[str, str] | None) -> None:
    tenant.escalation_statuses = list(statuses)
    tenant.escalation_status_ids = ids
    session.commit()


def _id_psa(tenant: Tenant) -> PSAAdapter | None:
    """The tenant's adapter when its webhooks carry status ids and it is connected."""
    if tenant.connection is None:
        return None
    try:
        psa = adapter(tenant)
    except (AdapterError, ValueError):  # settings the adapter cannot use: nothing to read
        return None
    return psa if psa.status_by == "id" else None
