"""What a webhook needs of its tenant, kept per process: no database round trip per delivery.

Most deliveries a PSA sends are not escalations, so the ignored path must not pay for loading
the tenant, its connection, decrypting its secrets and building its adapter every time. An
entry holds all of that for a short TTL, and is also dropped the moment the tenant changes
anywhere: every commit that touches a Tenant or a Connection bumps that tenant's generation
counter in Redis (shared by every web process), and a lookup compares the counter with the
entry's in one GET. A change is therefore seen by the next delivery on every instance; the
TTL only bounds what a missed bump (Redis down at that moment) could leave stale.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session, joinedload

from adapters.base import PSAAdapter
from connector.db import SessionFactory, session
from connector.errors import APIError
from connector.models import Connection, Tenant

log = logging.getLogger(__name__)

TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000  # far above the tenants one process serves; bounds a slug-spraying caller


def generation_key(tenant_id: int) -> str:
    return f"baton:tenant-generation:{tenant_id}"


@dataclass(frozen=True)
class CachedTenant:
    """A read-only snapshot of a tenant for the webhook path (the attribute names are the
    ORM's, so the trigger helpers of connector.tenants take either)."""

    id: int
    slug: str
    vendor: str
    escalation_statuses: list[str]
    escalation_status_ids: dict[str, str] | None
    psa: PSAAdapter | None  # None: not connected, or settings the adapter cannot use
    psa_error: APIError | None
    generation: bytes | None
    expires_at: float = field(compare=False)


class TenantCache:
    def __init__(self, connection: redis.Redis, ttl_seconds: float = TTL_SECONDS):
        self.redis = connection
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, CachedTenant] = {}
        self._lock = threading.Lock()

    def lookup(self, slug: str) -> CachedTenant | None:
        """The tenant by slug, or None when there is none (never cached: it may be created)."""
        entry = self._entries.get(slug)
        if entry is not None and entry.expires_at > time.monotonic():
            generation = self._generation(entry.id)
            if generation is not None and generation == entry.generation:
                return entry
        return self._load(slug)

    def peek(self, slug: str) -> CachedTenant | None:
        """The snapshot without asking Redis whether it is current (connector.ingest_gate
        compares its generation in the round trip it makes anyway); loaded when absent or past
        its TTL."""
        entry = self._entries.get(slug)
        if entry is not None and entry.expires_at > time.monotonic():
            return entry
        return self._load(slug)

    def reload(self, slug: str) -> CachedTenant | None:
        """The tenant read from the database now (a snapshot found stale)."""
        return self._load(slug)

    def forget(self, tenant_id: int) -> None:
        with self._lock:
            for slug, entry in list(self._entries.items()):
                if entry.id == tenant_id:
                    del self._entries[slug]

    def _generation(self, tenant_id: int) -> bytes | None:
        """The tenant's counter; b"" when never bumped, None when Redis cannot say."""
        try:
            value = self.redis.get(generation_key(tenant_id))
        except redis.RedisError:
            return None
        return value if isinstance(value, bytes) else b"" if value is None else str(value).encode()

    def _load(self, slug: str) -> CachedTenant | None:
        tenant = session.scalar(
            select(Tenant).options(joinedload(Tenant.connection)).where(Tenant.slug == slug)
        )
        if tenant is None:
            return None
        # Read before the snapshot is built: a change committed meanwhile bumps it past this.
        generation = self._generation(tenant.id)
        psa, error = _build_adapter(tenant)
        entry = CachedTenant(
            id=tenant.id,
            slug=tenant.slug,
            vendor=tenant.vendor,
            escalation_statuses=list(tenant.escalation_statuses or []),
            escalation_status_ids=dict(tenant.escalation_status_ids)
            if tenant.escalation_status_ids is not None
            else None,
            psa=psa,
            psa_error=error,
            generation=generation,
            expires_at=time.monotonic() + self.ttl_seconds,
        )
        session.commit()  # ends the read transaction; nothing of the request is pending yet
        if generation is not None:  # without Redis nothing could tell this entry is stale
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[slug] = entry
        return entry


def _build_adapter(tenant: Tenant) -> tuple[PSAAdapter | None, APIError | None]:
    from connector import tenants as tenant_ops

    try:
        return tenant_ops.adapter(tenant), None
    except APIError as exc:
        return None, exc


def cache() -> TenantCache:
    runtime = current_app.extensions["baton"]
    found = runtime.extras.get("tenant_cache")
    if found is None:
        found = runtime.extras["tenant_cache"] = TenantCache(runtime.redis)
    return found


# --- invalidation: every commit that changes a tenant or its connection --------------------

_PENDING = "baton_changed_tenants"


@event.listens_for(SessionFactory, "before_flush")
def _note_changes(s: Session, _context: Any, _instances: Any) -> None:
    changed: set[int] = s.info.setdefault(_PENDING, set())
    for obj in (*s.new, *s.dirty, *s.deleted):
        if isinstance(obj, Tenant) and obj.id is not None:
            changed.add(obj.id)
        elif isinstance(obj, Connection) and obj.tenant_id is not None:
            changed.add(obj.tenant_id)


@event.listens_for(SessionFactory, "after_commit")
def _bump(s: Session) -> None:
    changed: set[int] = s.info.pop(_PENDING, set())
    if not changed or not has_app_context():
        return
    runtime = current_app.extensions["baton"]
    local = runtime.extras.get("tenant_cache")
    try:
        with runtime.redis.pipeline(transaction=False) as pipe:
            for tenant_id in changed:
                pipe.incr(generation_key(tenant_id))
            pipe.execute()
    except redis.RedisError as exc:  # other processes catch up within the TTL
        log.warning(
            "tenant change not broadcast",
            extra={"fields": {"tenants": sorted(changed), "error": type(exc).__name__}},
        )
    if local is not None:
        for tenant_id in changed:
            local.forget(tenant_id)


@event.listens_for(SessionFactory, "after_rollback")
def _drop(s: Session) -> None:
    s.info.pop(_PENDING, None)
