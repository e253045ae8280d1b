"""Admin API (bearer CONNECTOR_ADMIN_TOKEN): tenants, their PSA connection, members, webhooks."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

import adapters
from adapters.fields import SettingField
from connector import psa_members, tenant_patterns
from connector import tenants as tenant_ops
from connector.auth import require_admin_token
from connector.db import session
from connector.models import ROLES, Tenant
from connector.redaction import describe, redact
from connector.redaction.tenant import MAX_PATTERN_CHARS, MAX_TERM_CHARS

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
    vendor = fields.String(required=True, validate=validate.OneOf(sorted(adapters.vendors())))
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


def connection_field(spec: SettingField) -> fields.Field:
    """A vendor's connection setting as the API validates it; secrets are write-only."""
    if spec.kind == "url":
        return fields.Url(require_tld=False, schemes={"http", "https"})
    if spec.kind == "email":
        return fields.Email()
    if spec.kind == "choice":
        return fields.String(validate=validate.OneOf(spec.choices))
    length = validate.Length(min=spec.min_length or None, max=spec.max_length)
    return fields.String(load_only=spec.secret, validate=length)


# Every vendor's fields (a name means the same for every vendor that uses it); which are
# required depends on the tenant's vendor.
ConnectionSchema = Schema.from_dict(
    {
        spec.name: connection_field(spec)
        for vendor in adapters.vendors().values()
        for spec in vendor.fields
    },
    name="ConnectionSchema",
)


class MemberCreateSchema(Schema):
    psa_member_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MemberCreatedSchema(Schema):
    id = fields.Integer()
    token = fields.String(metadata={"description": "shown once; stored hashed"})


class PanelValueSchema(Schema):
    label = fields.String()
    value = fields.String()


class PanelStepSchema(Schema):
    text = fields.String()
    values = fields.List(fields.Nested(PanelValueSchema))


class PSAMembersArgs(Schema):
    include_inactive = fields.Boolean(
        load_default=False, metadata={"description": "also the people the PSA has deactivated"}
    )


class PSAMemberSchema(Schema):
    psa_member_id = fields.String(metadata={"description": "the PSA's id Baton knows them by"})
    name = fields.String()
    email = fields.String(metadata={"description": "empty when the PSA has none"})
    active = fields.Boolean(metadata={"description": "false: deactivated in the PSA"})
    member_id = fields.Integer(
        allow_none=True, metadata={"description": "the Baton member they are; null if not added"}
    )
    role = fields.String(allow_none=True, metadata={"description": "their role, once added"})


class MemberPickSchema(Schema):
    psa_member_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MembersImportSchema(Schema):
    members = fields.List(
        fields.Nested(MemberPickSchema),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "the PSA's people to add, each with a role"},
    )


class MemberAddedSchema(MemberCreatedSchema):
    psa_member_id = fields.String()
    name = fields.String()
    email = fields.String()
    role = fields.String()


class WebhookInstallSchema(Schema):
    id = fields.String()
    url = fields.String()
    active = fields.Boolean()
    created = fields.Boolean()
    manual_steps = fields.List(
        fields.Nested(PanelStepSchema),
        metadata={"description": "what to do by hand in the PSA; a new credential shows once"},
    )
    manual_note = fields.String()


class RedactionPatternCreateSchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(tenant_patterns.KINDS),
        metadata={"description": "term: literal text, any case | pattern: an RE2 expression"},
    )
    value = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=max(MAX_TERM_CHARS, MAX_PATTERN_CHARS)),
        metadata={"description": "never returned for a term; a pattern is shown back"},
    )
    label = fields.String(load_default="", validate=validate.Length(max=100))


class RedactionPatternSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    label = fields.String()
    pattern = fields.String(
        allow_none=True, metadata={"description": "the pattern; null for a term (write-only)"}
    )
    length = fields.Integer(metadata={"description": "characters in the term or pattern"})
    created_at = fields.DateTime()


class RedactionTrySchema(Schema):
    text = fields.String(required=True, load_only=True, validate=validate.Length(max=20_000))


class RedactionTriedSchema(Schema):
    text = fields.String(metadata={"description": "the text as the model would see it"})
    redactions = fields.Dict(keys=fields.String(), values=fields.Integer())
    summary = fields.String(metadata={"description": "what was removed, in plain words"})


def tried_view(tenant: Tenant, text: str) -> dict[str, Any]:
    """A sample text through the same redaction a ticket gets, with the tenant's own rules."""
    redacted = redact(text, tenant_patterns.rules_for(tenant))
    return {
        "text": redacted.text,
        "redactions": dict(redacted.kinds),
        "summary": describe(redacted.kinds),
    }


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


@blp.route("/tenants/<slug>/psa-members")
class TenantPSAMembers(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(PSAMembersArgs, location="query")
    @blp.response(200, PSAMemberSchema(many=True))
    def get(self, args: dict[str, Any], slug: str):
        """The PSA's people (active ones unless asked), marked when already members"""
        tenant = tenant_ops.get_tenant(slug)
        return psa_members.list_views(tenant, tenant_ops.adapter(tenant), args["include_inactive"])


@blp.route("/tenants/<slug>/members/import")
class TenantMembersImport(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(MembersImportSchema)
    @blp.response(201, MemberAddedSchema(many=True))
    @blp.alt_response(422, description="nobody added: each pick that cannot be is named")
    def post(self, data: dict[str, Any], slug: str):
        """Add the PSA's chosen people, a role each, all or none; tokens are shown once"""
        tenant = tenant_ops.get_tenant(slug)
        made = psa_members.add_from_psa(tenant, tenant_ops.adapter(tenant), data["members"])
        return [
            {
                "id": m.id,
                "psa_member_id": m.psa_member_id,
                "name": m.name,
                "email": m.email,
                "role": m.role,
                "token": token,
            }
            for m, token in made
        ]


@blp.route("/tenants/<slug>/webhooks/install")
class WebhookInstall(MethodView):
    decorators = [require_admin_token]

    @blp.response(200, WebhookInstallSchema)
    def post(self, slug: str):
        """Register Baton's webhook on the tenant's PSA (idempotent)"""
        tenant = tenant_ops.get_tenant(slug)
        return tenant_ops.install_webhook(tenant)


@blp.route("/tenants/<slug>/redaction-patterns")
class TenantRedactionPatterns(MethodView):
    decorators = [require_admin_token]

    @blp.response(200, RedactionPatternSchema(many=True))
    def get(self, slug: str):
        """The tenant's never-send terms (write-only) and patterns"""
        return tenant_patterns.list_views(tenant_ops.get_tenant(slug))

    @blp.arguments(RedactionPatternCreateSchema)
    @blp.response(201, RedactionPatternSchema)
    @blp.alt_response(422, description="refused: the reason (RE2's, for a pattern) is given")
    def post(self, data: dict[str, Any], slug: str):
        """Add a never-send term or pattern; it applies to every model call from now on"""
        row = tenant_patterns.add(tenant_ops.get_tenant(slug), **data)
        return tenant_patterns.view(row)


@blp.route("/tenants/<slug>/redaction-patterns/<int:pattern_id>")
class TenantRedactionPattern(MethodView):
    decorators = [require_admin_token]

    @blp.response(204)
    def delete(self, slug: str, pattern_id: int):
        """Remove a term or pattern"""
        tenant_patterns.remove(tenant_ops.get_tenant(slug), pattern_id)


@blp.route("/tenants/<slug>/redaction-patterns/try")
class TenantRedactionTry(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(RedactionTrySchema)
    @blp.response(200, RedactionTriedSchema)
    def post(self, data: dict[str, Any], slug: str):
        """Redact a sample text as a ticket would be, the tenant's own rules included"""
        return tried_view(tenant_ops.get_tenant(slug), data["text"])
