"""Signing in to the panel: the PSA's proof of who is looking, sign-in links, the session, /me.

`blp` is the JSON API; `bp` holds the one HTML route a sign-in link opens.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from connector import sessions
from connector import tenants as tenant_ops
from connector.auth import current_member, require_admin, require_admin_token
from connector.db import session
from connector.errors import APIError
from connector.models import Member, Tenant

blp = Blueprint(
    "sessions",
    __name__,
    url_prefix="/api/v1",
    description="Panel sign-in: the PSA's proof of the member, sign-in links, the session cookie",
)
bp = FlaskBlueprint("sign_in", __name__)


class MemberSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    role = fields.String(metadata={"description": "technician | engineer | admin"})
    psa_member_id = fields.String()


class TenantRefSchema(Schema):
    slug = fields.String()
    name = fields.String()
    vendor = fields.String()


class MeSchema(Schema):
    member = fields.Nested(MemberSchema)
    tenant = fields.Nested(TenantRefSchema)
    csrf_token = fields.String(
        allow_none=True,
        metadata={"description": "send as X-Baton-CSRF on a panel session's POST/PUT/DELETE"},
    )


class SignedInSchema(Schema):
    member = fields.Nested(MemberSchema)
    csrf_token = fields.String()


class PSASignInSchema(Schema):
    """What the PSA hands the panel in its frame (the vendor's identity method names where)."""

    tenant = fields.String(required=True, validate=validate.Length(min=1, max=64))
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    proof = fields.String(required=True, validate=validate.Length(min=1, max=512))
    context = fields.String(load_default="", validate=validate.Length(max=2000))


class LinkRequestSchema(Schema):
    lifetime_hours = fields.Integer(
        load_default=int(sessions.LINK_LIFETIME.total_seconds() // 3600),
        validate=validate.Range(min=1, max=int(sessions.LINK_MAX_LIFETIME.total_seconds() // 3600)),
        metadata={"description": "how long the link works; 7 days unless said"},
    )


class LinkSchema(Schema):
    url = fields.String(metadata={"description": "shown once; only its hash is stored"})
    expires_at = fields.DateTime()


class RevokedSchema(Schema):
    revoked = fields.Integer(metadata={"description": "how many open links were withdrawn"})


def me_view(member: Member) -> dict[str, Any]:
    tenant = member.tenant
    return {
        "member": sessions.member_view(member),
        "tenant": {"slug": tenant.slug, "name": tenant.name, "vendor": tenant.vendor},
        "csrf_token": sessions.csrf_token(),
    }


def _tenant_member(tenant: Tenant, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.tenant_id != tenant.id:
        raise APIError(404, "unknown_member", f"no member {member_id} in {tenant.slug!r}")
    return member


def _link(member: Member, data: dict[str, Any]) -> dict[str, Any]:
    url, expires_at = sessions.create_link(member, timedelta(hours=data["lifetime_hours"]))
    return {"url": url, "expires_at": expires_at}


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """Who is signed in (bearer token or panel session)"""
        return me_view(current_member())


@blp.route("/panel/psa-sign-in")
class PSASignIn(MethodView):
    @blp.arguments(PSASignInSchema)
    @blp.response(200, SignedInSchema)
    def post(self, data: dict[str, Any]):
        """Sign in from inside the PSA with the proof its frame handed the panel"""
        tenant = tenant_ops.get_tenant(data["tenant"])
        member = sessions.verify_psa_member(
            tenant, data["member_id"], data["proof"], data["context"]
        )
        csrf = sessions.sign_in(member)
        return {"member": sessions.member_view(member), "csrf_token": csrf}


@blp.route("/panel/sign-out")
class SignOut(MethodView):
    @blp.response(204)
    def post(self):
        """End the panel session"""
        sessions.sign_out()


@blp.route("/admin/tenants/<slug>/members/<int:member_id>/sign-in-link")
class AdminSignInLink(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(LinkRequestSchema, required=False)
    @blp.response(201, LinkSchema)
    def post(self, data: dict[str, Any], slug: str, member_id: int):
        """A once-only panel sign-in link for a member (shown once)"""
        member = _tenant_member(tenant_ops.get_tenant(slug), member_id)
        return _link(member, data)

    @blp.response(200, RevokedSchema)
    def delete(self, slug: str, member_id: int):
        """Withdraw the member's unused sign-in links"""
        member = _tenant_member(tenant_ops.get_tenant(slug), member_id)
        return {"revoked": sessions.revoke_links(member)}


@blp.route("/members/<int:member_id>/sign-in-link")
class MemberSignInLink(MethodView):
    @blp.arguments(LinkRequestSchema, required=False)
    @blp.response(201, LinkSchema)
    def post(self, data: dict[str, Any], member_id: int):
        """A panel admin makes a once-only sign-in link for a member of their tenant"""
        admin = current_member()
        require_admin(admin)
        return _link(_tenant_member(admin.tenant, member_id), data)

    @blp.response(200, RevokedSchema)
    def delete(self, member_id: int):
        """A panel admin withdraws a member's unused sign-in links"""
        admin = current_member()
        require_admin(admin)
        return {"revoked": sessions.revoke_links(_tenant_member(admin.tenant, member_id))}


# --- the page a sign-in link opens --------------------------------------------------------------

REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baton sign-in</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}}}</style>
</head><body><main><h1>Baton sign-in</h1><p role="alert">{message}</p></main></body></html>
"""
NO_STORE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in this page's URL
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


@bp.get("/panel/sign-in")
def sign_in_with_link():
    token = request.args.get("token", "")
    try:
        if not token or len(token) > 1000:
            raise sessions.LinkRefused(400, f"This sign-in link is not valid. {sessions.ASK_ADMIN}")
        member = sessions.redeem_link(token)
    except sessions.LinkRefused as refused:
        page = REFUSED_PAGE.format(message=escape(refused.message))
        return page, refused.status, {"Content-Type": "text/html; charset=utf-8", **NO_STORE}
    sessions.sign_in(member)
    response = redirect("/panel/")
    response.headers.update(NO_STORE)
    return response
