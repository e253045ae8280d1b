"""POST /webhooks/<vendor>/<tenant>: verify, parse, record, enqueue; an audit row per request.

The work follows what the delivery is. Most are saves of tickets that are not escalated:
those are verified and parsed against this process's snapshot of the tenant, and one Redis
round trip (connector.ingest_gate) takes the rate limit, checks the snapshot is current and
queues the audit row. Only a delivery that may change something (an escalated status, a
ticket in the escalated index, a closed ticket) goes to the database, where the audit row
commits with what it records.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import Blueprint, current_app, jsonify, request

from adapters.base import (
    AdapterError,
    Ignored,
    MalformedWebhook,
    TicketEvent,
    WebhookRejected,
    WebhookRequest,
)
from connector import (
    delivery_audit,
    escalated_index,
    escalations,
    ingest_gate,
    new_notes,
    resolutions,
    tenant_cache,
)
from connector import tenants as tenant_ops
from connector.config import MAX_BODY_BYTES
from connector.db import session
from connector.errors import APIError, error_response
from connector.limits import limiter
from connector.tenant_cache import CachedTenant

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@limiter.request_filter
def _limited_by_the_gate() -> bool:
    """Webhooks are limited per tenant by the ingest gate. A request filter, where `exempt`
    would do, so that flask-limiter does not resolve every delivery's limits to find none."""
    return request.blueprint == bp.name


class _Stale(Exception):
    """The snapshot the delivery was checked against is out of date: check it again."""


class _Delivery:
    """One request: its tenant snapshot, and its one pass through the gate."""

    def __init__(self, vendor: str, slug: str, *, fresh: bool):
        self.vendor, self.slug, self.fresh = vendor, slug, fresh
        cache = tenant_cache.cache()
        self.tenant: CachedTenant | None = cache.reload(slug) if fresh else cache.peek(slug)
        self.counted = fresh  # a fresh pass follows one the window has counted already
        runtime = current_app.extensions["baton"]
        self.rate = runtime.settings.webhook_rate_limit
        gate = runtime.extras.get("ingest_gate")
        if gate is None:
            gate = runtime.extras["ingest_gate"] = ingest_gate.IngestGate(runtime.redis)
        self.gate: ingest_gate.IngestGate = gate

    def row(self, outcome: str, status: int, reason: str = "", **kwargs: Any) -> dict[str, Any]:
        tenant_id = self.tenant.id if self.tenant else None
        return delivery_audit.row(
            tenant_id,
            self.slug,
            self.vendor,
            outcome,
            status,
            reason,
            remote_addr=request.remote_addr,
            **kwargs,
        )

    def admit(
        self, audit: dict[str, Any] | None = None, ticket_id: str = "", index: str = ""
    ) -> ingest_gate.Verdict:
        """Through the gate once; `audit` is queued when nothing else needs doing, `index` is
        a ticket to put in the escalated index. Raises _Stale; a 429 comes back as a LIMITED
        verdict. Without Redis: PROCEED, unlimited."""
        if self.counted:  # a second look at a delivery counted once: no limit
            count = False
        else:
            count, self.counted = True, True
        try:
            verdict = self.gate.admit(
                self.slug,
                self.rate,
                tenant_id=self.tenant.id if self.tenant else None,
                generation=None if self.fresh or not self.tenant else self.tenant.generation,
                count=count,
                ticket_id=ticket_id,
                audit=delivery_audit.encode(audit) if audit else "",
                index=index,
            )
        except redis.RedisError as exc:  # fail open, as the limiter always has
            log.warning("webhook gate unavailable", extra={"fields": {"error": type(exc).__name__}})
            if not self.fresh:
                raise _Stale from exc  # nothing can say the snapshot is current: reread it
            return ingest_gate.Verdict(ingest_gate.PROCEED)
        if verdict.kind == ingest_gate.STALE:
            raise _Stale
        return verdict

    def limited(self, verdict: ingest_gate.Verdict):
        response = error_response(
            429, "too_many_requests", f"over {self.rate} for tenant {self.slug!r}"
        )
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response

    def unrecorded(self, audit: dict[str, Any], ticket_id: str = "") -> ingest_gate.Verdict:
        """An answer that records nothing: its audit row through the gate, or into the
        database when the gate says the delivery must go there (it then returns PROCEED)."""
        verdict = self.admit(audit, ticket_id)
        if verdict.proceed and not ticket_id:
            session.rollback()
            delivery_audit.write_now(audit)
        return verdict

    def refuse(self, status: int, code: str, message: str, outcome: str = "refused"):
        verdict = self.unrecorded(self.row(outcome, status, f"{code}: {message}"))
        if verdict.kind == ingest_gate.LIMITED:
            return self.limited(verdict)
        return error_response(status, code, message)


@bp.post("/webhooks/<vendor>/<slug>")  # limited per tenant by the gate, not flask-limiter
def receive(vendor: str, slug: str):
    started = time.perf_counter()
    try:
        try:
            return _receive(_Delivery(vendor, slug, fresh=False))
        except _Stale:
            return _receive(_Delivery(vendor, slug, fresh=True))
    finally:
        current_app.extensions["baton"].metrics.webhook_seconds.observe(
            time.perf_counter() - started
        )


def _receive(delivery: _Delivery):
    tenant, slug, vendor = delivery.tenant, delivery.slug, delivery.vendor
    if tenant is None:
        return delivery.refuse(404, "unknown_tenant", f"no tenant {slug!r}")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return delivery.refuse(413, "payload_too_large", "the body is over 1 MiB")
    if not request.is_json:
        return delivery.refuse(
            415, "unsupported_media_type", "webhooks must be sent as application/json"
        )
    psa = tenant.psa
    if psa is None:
        exc = tenant.psa_error or APIError(409, "not_connected", f"tenant {slug!r} cannot be read")
        return delivery.refuse(exc.status, exc.code, exc.message)
    if vendor != psa.vendor:
        return delivery.refuse(
            404, "unknown_webhook", f"tenant {slug!r} takes {psa.vendor} webhooks, not {vendor}"
        )
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        return delivery.refuse(413, "payload_too_large", "the body is over 1 MiB")
    sent = WebhookRequest(body=raw, headers=request.headers, query=request.args)
    try:
        psa.verify_webhook(sent)
        event = psa.parse_webhook(sent)
    except WebhookRejected as exc:
        return delivery.refuse(401, "invalid_signature", str(exc))
    except MalformedWebhook as exc:
        return delivery.refuse(400, "malformed_body", str(exc))
    except AdapterError as exc:  # a PSA whose deliveries are re-read could not be asked now
        return delivery.refuse(503, "psa_unavailable", str(exc), outcome="failed")

    if isinstance(event, Ignored):
        if event.recheck_webhook:
            log.warning("webhook deactivation notice", extra={"fields": {"tenant": slug}})
        verdict = delivery.unrecorded(
            delivery.row("ignored", 200, event.reason, delivery_key=event.delivery_key)
        )
        if verdict.kind == ingest_gate.LIMITED:
            return delivery.limited(verdict)
        return jsonify({"ignored": event.reason}), 200

    if _changes_nothing(tenant, event):
        reason = escalations.ignored_reason(tenant, event)
        audit = delivery.row("ignored", 200, reason, delivery_key=event.delivery_key)
        verdict = delivery.unrecorded(audit, ticket_id=event.ticket_id)
        if verdict.kind == ingest_gate.AUDITED:
            return jsonify({"ignored": reason}), 200
    else:  # the index add of a ticket that may enter its escalated status rides along
        verdict = delivery.admit(
            index=event.ticket_id if escalations.is_escalating(tenant, event) else ""
        )
    if verdict.kind == ingest_gate.LIMITED:
        return delivery.limited(verdict)
    response = _record(delivery, event, indexed=verdict.indexed)
    if verdict.kind == ingest_gate.UNINDEXED:
        escalated_index.rebuild(current_app.extensions["baton"].redis, tenant.id)
    return response


def _changes_nothing(tenant: CachedTenant, event: TicketEvent) -> bool:
    """Not an escalated status, not closed (what fixed it is read then), and no trigger name
    to resolve: unless the ticket is in the escalated index, nothing is written for it."""
    psa = tenant.psa
    return not (
        event.closed
        or escalations.is_escalating(tenant, event)
        or (psa is not None and tenant_ops.needs_resolution(tenant, psa, event.status))
    )


def _record(delivery: _Delivery, event: TicketEvent, *, indexed: bool):
    """The database path: the audit row commits with what the delivery records."""
    tenant, psa = delivery.tenant, delivery.tenant.psa if delivery.tenant else None
    assert tenant is not None and psa is not None
    try:
        if tenant_ops.resolve_for_delivery(tenant, psa, event.status):
            tenant = tenant_cache.cache().reload(delivery.slug) or tenant
    except AdapterError as exc:  # the PSA sends again; until then nothing is decided
        session.rollback()
        message = f"the trigger's status names could not be resolved: {exc}"
        return delivery.refuse(503, "psa_unavailable", message, outcome="failed")

    def audit(recorded: escalations.Recorded) -> dict[str, Any]:
        # The row that commits with what the delivery records, given its outcome.
        if not recorded.created and recorded.escalation_id is None:
            return delivery.row(
                "ignored", 200, recorded.ignored or "", delivery_key=event.delivery_key
            )
        return delivery.row(
            "accepted" if recorded.created else "duplicate",
            202,
            delivery_key=event.delivery_key,
            escalation_id=recorded.escalation_id,
        )

    recorded = escalations.record(tenant, event, audit=audit, indexed=indexed)
    if event.closed:  # what fixed it is read through the adapter, off the webhook's path
        resolutions.enqueue(tenant, event.ticket_id)
    if recorded.escalation_id is None:
        if recorded.changed is not None:
            new_notes.enqueue(recorded.changed)
        return jsonify({"ignored": recorded.ignored}), 200
    if recorded.created:
        escalations.start_pipeline(
            recorded.escalation_id, tenant_id=tenant.id, ticket_id=event.ticket_id, source="webhook"
        )
    return jsonify({"escalation_id": recorded.escalation_id}), 202
