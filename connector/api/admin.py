"""Admin API (bearer CONNECTOR_ADMIN_TOKEN): tenants, their PSA connection, members, webhooks."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from adapters.fields import CONNECTION_FIELDS
from connector import tenants as tenant_ops
from connector.auth import require_admin_token
from connector.db import session
from connector.models import ROLES, Tenant

blp = Blueprint(
    "admin",
    __name__,
    url_prefix="/api/v1/admin",
    description="Set-up by the operator (bearer CONNECTOR_ADMIN_TOKEN)",
)


class TenantCreateSchema(Schema):
    slug = fields.String(
        required=True,
        validate=validate.Regexp(
            tenant_ops.SLUG, error="lower-case letters, digits and dashes, at most 63"
        ),
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    vendor = fields.String(required=True, validate=validate.OneOf(sorted(CONNECTION_FIELDS)))
    escalation_statuses = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        required=True,
        validate=validate.Length(min=1, max=20),
    )
    language = fields.String(load_default="en", validate=validate.Length(min=2, max=16))


class TenantUpdateSchema(Schema):
    """Any of these; the slug and the vendor stay."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    escalation_statuses = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        validate=validate.Length(min=1, max=20),
    )
    language = fields.String(validate=validate.Length(min=2, max=16))


class WebhookStateSchema(Schema):
    installed = fields.Boolean()
    active = fields.Boolean()
    id = fields.String(allow_none=True)


class ConnectionStateSchema(Schema):
    configured = fields.Boolean()
    settings = fields.Dict(keys=fields.String(), values=fields.String())
    secrets = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "'set' or 'not set'; values are never returned"},
    )
    webhook = fields.Nested(WebhookStateSchema)


class TenantSchema(Schema):
    slug = fields.String()
    name = fields.String()
    vendor = fields.String()
    escalation_statuses = fields.List(fields.String())
    escalation_status_ids = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        allow_none=True,
        metadata={
            "description": "for a PSA whose webhooks carry status ids: each status's id, read "
            "from the PSA; null until it could be read (then the first webhook resolves them)"
        },
    )
    language = fields.String()
    webhook_url = fields.String()
    connection = fields.Nested(ConnectionStateSchema)
    created_at = fields.DateTime()


class ConnectionSchema(Schema):
    """Every vendor's fields; which are required depends on the tenant's vendor."""

    site = fields.Url(require_tld=False, schemes={"http", "https"})
    company_id = fields.String(validate=validate.Length(max=100))
    public_key = fields.String(load_only=True, validate=validate.Length(max=200))
    private_key = fields.String(load_only=True, validate=validate.Length(max=200))
    client_id = fields.String(load_only=True, validate=validate.Length(max=200))
    username = fields.Email()
    secret = fields.String(load_only=True, validate=validate.Length(max=200))
    integration_code = fields.String(load_only=True, validate=validate.Length(max=200))
    webhook_secret = fields.String(load_only=True, validate=validate.Length(min=10, max=64))
    zone_url = fields.Url(require_tld=False, schemes={"http", "https"})
    dialect = fields.String(validate=validate.OneOf(["connectwise", "autotask"]))


class MemberCreateSchema(Schema):
    psa_member_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MemberCreatedSchema(Schema):
    id = fields.Integer()
    token = fields.String(metadata={"description": "shown once; stored hashed"})


class WebhookInstallSchema(Schema):
    id = fields.String()
    url = fields.String()
    active = fields.Boolean()
    created = fields.Boolean()


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "vendor": tenant.vendor,
        "escalation_statuses": tenant.escalation_statuses,
        "escalation_status_ids": tenant.escalation_status_ids,
        "language": tenant.language,
        "webhook_url": tenant_ops.webhook_url(tenant),
        "connection": tenant_ops.describe_connection(tenant),
        "created_at": tenant.created_at,
    }


@blp.route("/tenants")
class Tenants(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(TenantCreateSchema)
    @blp.response(201, TenantSchema)
    def post(self, data: dict[str, Any]):
        """Create a tenant"""
        return tenant_view(tenant_ops.create_tenant(**data))

    @blp.response(200, TenantSchema(many=True))
    def get(self):
        """List tenants"""
        return [tenant_view(t) for t in session.scalars(select(Tenant).order_by(Tenant.slug))]


@blp.route("/tenants/<slug>")
class TenantDetail(MethodView):
    decorators = [require_admin_token]

    @blp.response(200, TenantSchema)
    def get(self, slug: str):
        """One tenant"""
        return tenant_view(tenant_ops.get_tenant(slug))

    @blp.arguments(TenantUpdateSchema)
    @blp.response(200, TenantSchema)
    def patch(self, data: dict[str, Any], slug: str):
        """Change a tenant's name, language or escalation statuses (checked against the PSA's
        own statuses when it answers: an unknown one is a 422 listing them)"""
        tenant = tenant_ops.update_tenant(tenant_ops.get_tenant(slug), **data)
        return tenant_view(tenant)


@blp.route("/tenants/<slug>/connection")
class TenantConnection(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(ConnectionSchema)
    @blp.response(200, TenantSchema)
    def put(self, data: dict[str, Any], slug: str):
        """Set the tenant's PSA connection (secrets are write-only)"""
        tenant = tenant_ops.get_tenant(slug)
        tenant_ops.set_connection(tenant, data)
        return tenant_view(tenant)


@blp.route("/tenants/<slug>/members")
class TenantMembers(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(MemberCreateSchema)
    @blp.response(201, MemberCreatedSchema)
    def post(self, data: dict[str, Any], slug: str):
        """Add a member; the token in the answer is shown once"""
        member, token = tenant_ops.add_member(tenant_ops.get_tenant(slug), **data)
        return {"id": member.id, "token": token}


@blp.route("/tenants/<slug>/webhooks/install")
class WebhookInstall(MethodView):
    decorators = [require_admin_token]

    @blp.response(200, WebhookInstallSchema)
    def post(self, slug: str):
        """Register Baton's webhook on the tenant's PSA (idempotent)"""
        tenant = tenant_ops.get_tenant(slug)
        return tenant_ops.install_webhook(tenant)
