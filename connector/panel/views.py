"""The panel's pages: server-rendered shells; the data comes from the JSON API with fetch.

Every page carries a strict Content-Security-Policy (no inline script or style), may be framed
only by the tenant's PSA, and shows a plain sign-in page to a visitor without a session.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, render_template, request
from sqlalchemy import select

from connector import tenants as tenant_ops
from connector.api.escalations import load_escalation
from connector.auth import current_member
from connector.db import session
from connector.errors import APIError
from connector.models import Member, Tenant
from connector.panel import policy

bp = Blueprint(
    "panel",
    __name__,
    url_prefix="/panel",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def viewer() -> Member | None:
    """The signed-in member, or None (the page then explains how to sign in)."""
    try:
        return current_member()
    except APIError:
        return None


def _tenant_hint() -> Tenant | None:
    """A signed-out page names its tenant in ?tenant=<slug> (the panel URL the admin set up),
    so the PSA may frame it and its replies to the sign-in request are trusted."""
    slug = (request.args.get("tenant") or "").strip()
    if not slug:
        return None
    return session.scalar(select(Tenant).where(Tenant.slug == slug))


def _page(template: str, member: Member, **context) -> str:
    g.panel_tenant = member.tenant
    settings = current_app.extensions["baton"].settings
    return render_template(
        template,
        member=member,
        tenant=member.tenant,
        deadline_seconds=int(settings.ai_deadline_seconds),
        **context,
    )


def _signed_out() -> tuple[str, int]:
    tenant = _tenant_hint()
    g.panel_tenant = tenant
    return (
        render_template(
            "signed_out.html",
            tenant=tenant,
            psa=tenant_ops.psa_vendor(tenant) if tenant else None,
            message_origins=" ".join(policy.message_origins(tenant)),
        ),
        401,
    )


@bp.get("/")
def queue_page():
    member = viewer()
    if member is None:
        return _signed_out()
    return _page("queue.html", member)


@bp.get("/escalations/<int:escalation_id>")
def handoff_page(escalation_id: int):
    member = viewer()
    if member is None:
        return _signed_out()
    try:
        escalation = load_escalation(escalation_id, member)
    except APIError as exc:
        return _page("missing.html", member, message=exc.message), exc.status
    return _page("handoff.html", member, escalation_id=escalation.id)


@bp.get("/escalate")
def escalate_page():
    member = viewer()
    if member is None:
        return _signed_out()
    ticket = (request.args.get("ticket") or "").strip()
    return _page("escalate.html", member, ticket=ticket)


@bp.after_request
def _security_headers(response: Response) -> Response:
    headers = policy.page_headers(g.get("panel_tenant"))
    if response.mimetype != "text/html":
        del headers["Cache-Control"]  # static files may be cached; pages name the member
    response.headers.update(headers)
    return response
