"""POST /webhooks/<vendor>/<tenant>: verify, parse, record, enqueue; an audit row per request."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import Table, insert

from adapters.base import (
    AdapterError,
    Ignored,
    MalformedWebhook,
    WebhookRejected,
    WebhookRequest,
)
from connector import escalations, new_notes, resolutions, tenant_cache
from connector import tenants as tenant_ops
from connector.config import MAX_BODY_BYTES
from connector.db import session, utcnow
from connector.errors import APIError, error_response
from connector.limits import limiter, webhook_wait
from connector.models import WebhookDelivery
from connector.tenant_cache import CachedTenant

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Built once: the audit row is one INSERT with no ORM unit of work around it.
_AUDIT_ROW = insert(cast(Table, WebhookDelivery.__table__))


def _audit_values(
    tenant: CachedTenant | None,
    slug: str,
    vendor: str,
    outcome: str,
    status: int,
    reason: str = "",
    delivery_key: str | None = None,
    escalation_id: int | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant.id if tenant else None,
        "tenant_slug": slug[:64],
        "vendor": vendor[:32],
        "received_at": utcnow(),
        "outcome": outcome,
        "status_code": status,
        "reason": reason[:500],
        "delivery_key": (delivery_key or None) and delivery_key[:200],
        "escalation_id": escalation_id,
        "remote_addr": request.remote_addr,
    }


def _audit(tenant: CachedTenant | None, slug: str, vendor: str, *args: Any, **kwargs: Any) -> None:
    """The audit row on its own, committed at once (a refusal, or an event the adapter
    ignored: nothing else of the request is written)."""
    session.connection().execute(_AUDIT_ROW, _audit_values(tenant, slug, vendor, *args, **kwargs))
    session.commit()


def _refuse(
    tenant: CachedTenant | None,
    slug: str,
    vendor: str,
    status: int,
    code: str,
    message: str,
    outcome: str = "refused",
):
    session.rollback()
    _audit(tenant, slug, vendor, outcome, status, f"{code}: {message}")
    return error_response(status, code, message)


def _webhook_rate() -> str:
    return current_app.extensions["baton"].settings.webhook_rate_limit


@bp.post("/webhooks/<vendor>/<slug>")
@limiter.exempt
def receive(vendor: str, slug: str):
    started = time.perf_counter()
    try:
        wait = webhook_wait(slug, _webhook_rate())
        if wait is not None:  # the PSA retries later: nothing it sent is lost
            response = error_response(
                429, "too_many_requests", f"over {_webhook_rate()} for tenant {slug!r}"
            )
            response.headers["Retry-After"] = str(wait)
            return response
        return _receive(vendor, slug)
    finally:
        current_app.extensions["baton"].metrics.webhook_seconds.observe(
            time.perf_counter() - started
        )


def _receive(vendor: str, slug: str):
    # Cached per process (connector.tenant_cache): the connection and its adapter come with it.
    tenant = tenant_cache.cache().lookup(slug)
    if tenant is None:
        return _refuse(None, slug, vendor, 404, "unknown_tenant", f"no tenant {slug!r}")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _refuse(tenant, slug, vendor, 413, "payload_too_large", "the body is over 1 MiB")
    if not request.is_json:
        return _refuse(
            tenant,
            slug,
            vendor,
            415,
            "unsupported_media_type",
            "webhooks must be sent as application/json",
        )
    psa = tenant.psa
    if psa is None:
        exc = tenant.psa_error or APIError(409, "not_connected", f"tenant {slug!r} cannot be read")
        return _refuse(tenant, slug, vendor, exc.status, exc.code, exc.message)
    if vendor != psa.vendor:
        return _refuse(
            tenant,
            slug,
            vendor,
            404,
            "unknown_webhook",
            f"tenant {slug!r} takes {psa.vendor} webhooks, not {vendor}",
        )
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        return _refuse(tenant, slug, vendor, 413, "payload_too_large", "the body is over 1 MiB")
    delivery = WebhookRequest(body=raw, headers=request.headers, query=request.args)
    try:
        psa.verify_webhook(delivery)
        event = psa.parse_webhook(delivery)
    except WebhookRejected as exc:
        return _refuse(tenant, slug, vendor, 401, "invalid_signature", str(exc))
    except MalformedWebhook as exc:
        return _refuse(tenant, slug, vendor, 400, "malformed_body", str(exc))
    except AdapterError as exc:  # a PSA whose deliveries are re-read could not be asked now
        return _refuse(tenant, slug, vendor, 503, "psa_unavailable", str(exc), outcome="failed")

    if isinstance(event, Ignored):
        if event.recheck_webhook:
            log.warning("webhook deactivation notice", extra={"fields": {"tenant": slug}})
        _audit(tenant, slug, vendor, "ignored", 200, event.reason, event.delivery_key)
        return jsonify({"ignored": event.reason}), 200

    try:
        if tenant_ops.resolve_for_delivery(tenant, psa, event.status):
            tenant = tenant_cache.cache().lookup(slug) or tenant
    except AdapterError as exc:  # the PSA sends again; until then nothing is decided
        message = f"the trigger's status names could not be resolved: {exc}"
        return _refuse(tenant, slug, vendor, 503, "psa_unavailable", message, outcome="failed")

    def audit(recorded: escalations.Recorded) -> None:
        # In the transaction that records the delivery: the audit and the row commit together.
        if recorded.escalation is None:
            values = _audit_values(
                tenant, slug, vendor, "ignored", 200, recorded.ignored or "", event.delivery_key
            )
        else:
            outcome = "accepted" if recorded.created else "duplicate"
            values = _audit_values(
                tenant, slug, vendor, outcome, 202, "", event.delivery_key, recorded.escalation.id
            )
        session.connection().execute(_AUDIT_ROW, values)

    recorded = escalations.record(tenant, event, audit=audit)
    if event.closed:  # what fixed it is read through the adapter, off the webhook's path
        resolutions.enqueue(tenant, event.ticket_id)
    if recorded.escalation is None:
        if recorded.changed is not None:
            new_notes.enqueue(recorded.changed)
        return jsonify({"ignored": recorded.ignored}), 200
    if recorded.created:
        escalations.start_pipeline(recorded.escalation)
    return jsonify({"escalation_id": recorded.escalation.id}), 202
