"""The admin console's API: a panel admin sets up their own tenant (connection, trigger, webhook,
members, settings, the delivery audit). Every endpoint is for role `admin` only; others get 403.

Notifications, the pilot, the baseline and sign-in links have their own modules; the console page
calls those as they are.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

import adapters
from adapters.base import AdapterError, PSAAdapter, StatusOption
from adapters.values import origin_of
from connector import delivery_audit, psa_members, tenant_patterns
from connector import tenants as tenant_ops
from connector.api.admin import (
    ConnectionSchema,
    ConnectionStateSchema,
    MemberCreateSchema,
    MembersImportSchema,
    PanelStepSchema,
    PSAMembersArgs,
    PSAMemberSchema,
    RedactionPatternCreateSchema,
    RedactionPatternSchema,
    RedactionTriedSchema,
    RedactionTrySchema,
    tried_view,
)
from connector.auth import current_member, require_admin
from connector.db import session
from connector.errors import APIError
from connector.models import ROLES, Member, Tenant, WebhookDelivery
from connector.summary import LANGUAGES

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/api/v1/tenant",
    description="The admin console: your tenant's PSA connection, trigger, webhook, members",
)

OUTCOMES = ("accepted", "duplicate", "ignored", "refused", "failed")


# --- schemas -------------------------------------------------------------------------------


class FieldSpecSchema(Schema):
    name = fields.String()
    label = fields.String()
    secret = fields.Boolean(metadata={"description": "write-only: shown only as set / not set"})
    required = fields.Boolean()
    kind = fields.String(metadata={"description": "text | url | email | choice"})
    choices = fields.List(fields.String())
    help = fields.String()


class ConnectionViewSchema(ConnectionStateSchema):
    vendor = fields.String()
    fields_ = fields.List(fields.Nested(FieldSpecSchema), data_key="fields")


class CheckSchema(Schema):
    what = fields.String(metadata={"description": "the vendor's own setting or step"})
    ok = fields.Boolean()
    detail = fields.String(metadata={"description": "what worked or what to fix, in plain words"})


class ConnectionTestSchema(Schema):
    ok = fields.Boolean()
    checks = fields.List(fields.Nested(CheckSchema))


class StatusSchema(Schema):
    value = fields.String(metadata={"description": "what the trigger stores for this status"})
    id = fields.String()
    name = fields.String()
    groups = fields.List(
        fields.String(), metadata={"description": "where the PSA groups it (boards, queues)"}
    )
    selected = fields.Boolean()


class StatusesSchema(Schema):
    value_is = fields.String(
        metadata={"description": "'name' or 'id': how the PSA's webhooks name a status"}
    )
    statuses = fields.List(fields.Nested(StatusSchema))
    selected = fields.List(fields.String())
    unknown_selected = fields.List(
        fields.String(), metadata={"description": "configured values the PSA does not list"}
    )


class TriggerSchema(Schema):
    escalation_statuses = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        required=True,
        validate=validate.Length(min=1, max=20, error="pick between 1 and 20 statuses"),
    )


class TriggerViewSchema(Schema):
    escalation_statuses = fields.List(fields.String())
    names = fields.List(
        fields.String(), metadata={"description": "the same, as the PSA names them"}
    )


class WebhookViewSchema(Schema):
    installed = fields.Boolean()
    active = fields.Boolean()
    id = fields.String(allow_none=True)
    callback_url = fields.String(metadata={"description": "where the PSA sends ticket events"})
    registered_url = fields.String(allow_none=True)
    created = fields.Boolean(
        metadata={"description": "after an install: false when an existing one was repaired"}
    )
    panel_vendor = fields.String(
        metadata={"description": "the vendor whose screens the panel is added to"}
    )
    panel_steps = fields.List(fields.Nested(PanelStepSchema))
    panel_note = fields.String()
    webhook_steps = fields.List(
        fields.Nested(PanelStepSchema),
        metadata={"description": "the webhook set up by hand in the PSA, where its API cannot"},
    )
    webhook_note = fields.String()


class MemberViewSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    role = fields.String()
    psa_member_id = fields.String()
    created_at = fields.DateTime()
    you = fields.Boolean(metadata={"description": "the calling admin"})
    psa_state = fields.String(
        allow_none=True,
        metadata={
            "description": "active | deactivated | missing (not in the PSA's list), as of "
            "psa_checked_at; null until the PSA's members are first read"
        },
    )
    psa_checked_at = fields.DateTime(allow_none=True)


class NewMemberSchema(MemberViewSchema):
    token = fields.String(metadata={"description": "the member's API token: shown this once"})


class MemberUpdateSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.Email()


class SettingsSchema(Schema):
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    vendor = fields.String(dump_only=True)
    language = fields.String(required=True, validate=validate.OneOf(sorted(LANGUAGES)))
    languages = fields.Dict(keys=fields.String(), values=fields.String(), dump_only=True)
    escalation_statuses = fields.List(fields.String(), dump_only=True)
    pilot_started_on = fields.Date(allow_none=True, dump_only=True)
    verdict_threshold_hours = fields.Float(dump_only=True)


class DeliveriesArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class DeliverySchema(Schema):
    id = fields.Integer()
    received_at = fields.DateTime()
    vendor = fields.String()
    outcome = fields.String(metadata={"description": " | ".join(OUTCOMES)})
    status_code = fields.Integer()
    reason = fields.String(metadata={"description": "why it was ignored or refused"})
    escalation_id = fields.Integer(allow_none=True)


# --- helpers -------------------------------------------------------------------------------


def _admin() -> Member:
    member = current_member()
    require_admin(member)
    return member


def invalid(field: str, problem: str) -> APIError:
    """A 422 shaped like marshmallow's, so the page shows it beside the field."""
    return APIError(422, "invalid_request", f"{field}: {problem}", fields={field: [problem]})


def _psa(tenant: Tenant) -> PSAAdapter:
    try:
        return tenant_ops.adapter(tenant)
    except APIError:
        raise
    except (AdapterError, ValueError) as exc:  # a setting the adapter cannot use at all
        raise APIError(409, "bad_connection", f"the connection cannot be used: {exc}") from None


def connection_view(tenant: Tenant) -> dict[str, Any]:
    described = tenant_ops.describe_connection(tenant)
    return {
        "vendor": tenant.vendor,
        "fields_": [
            {
                "name": f.name,
                "label": f.label,
                "secret": f.secret,
                "required": f.required,
                "kind": f.kind,
                "choices": list(f.choices),
                "help": f.help,
            }
            for f in adapters.vendor(tenant.vendor).fields
        ],
        "configured": described["configured"],
        "settings": described["settings"],
        "secrets": described["secrets"]
        or {f.name: "not set" for f in adapters.vendor(tenant.vendor).fields if f.secret},
        "webhook": described.get("webhook", {"installed": False, "active": False, "id": None}),
    }


def check_connection_fields(tenant: Tenant, data: dict[str, Any]) -> None:
    """Which of the vendor's fields are missing or foreign, named field by field."""
    specs = adapters.vendor(tenant.vendor).fields
    known = {f.name for f in specs}
    problems: dict[str, list[str]] = {}
    for name in sorted(set(data) - known):
        problems[name] = [f"not a {tenant.vendor} setting"]
    stored = tenant_ops.describe_connection(tenant)
    for spec in specs:
        given = data.get(spec.name)
        given = given.strip() if isinstance(given, str) else given
        kept = spec.secret and stored["secrets"].get(spec.name) == "set"
        if spec.required and not given and not kept:
            problems[spec.name] = [f"{spec.label} is required"]
    if problems:
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items())
        raise APIError(422, "invalid_request", summary, fields=problems)


def status_options(psa: PSAAdapter) -> tuple[str, list[dict[str, Any]]]:
    """The PSA's statuses as the trigger stores them, the way its webhooks name them: by id,
    or by name (one entry per name, whichever groups have it)."""
    try:
        listed: list[StatusOption] = psa.list_statuses()
    except AdapterError as exc:
        raise APIError(502, "psa_error", f"the PSA did not list its statuses: {exc}") from None
    if psa.status_by == "id":
        return "id", [
            {"value": s.id, "id": s.id, "name": s.name, "groups": []} for s in listed if s.id
        ]
    by_name: dict[str, dict[str, Any]] = {}
    for s in listed:
        if not s.name:
            continue
        entry = by_name.setdefault(
            s.name.casefold(), {"value": s.name, "id": s.id, "name": s.name, "groups": []}
        )
        if s.group and s.group not in entry["groups"]:
            entry["groups"].append(s.group)
    return "name", list(by_name.values())


def _picked(options: list[dict[str, Any]], value: str, value_is: str) -> dict[str, Any] | None:
    wanted = value.strip().casefold()
    for option in options:
        if option["value"].casefold() == wanted:
            return option
    if value_is == "id":  # an API caller may name a status stored by id by its label
        matches = [o for o in options if o["name"].casefold() == wanted]
        if len(matches) == 1:
            return matches[0]
    return None


def panel_setup(tenant: Tenant) -> tuple[str, list[dict[str, Any]], str]:
    """The steps (and the values to paste) that put the panel on the PSA's ticket screen."""
    public_url = current_app.extensions["baton"].settings.public_url
    psa = tenant_ops.psa_vendor(tenant)
    setup = psa.panel_setup(
        f"{public_url}/panel/?tenant={tenant.slug}", origin_of(public_url) or public_url
    )
    return psa.key, tenant_ops.setup_steps(setup), setup.note


def webhook_steps(tenant: Tenant, install: dict[str, Any] | None) -> tuple[list[Any], str]:
    """What an install just left to do by hand; else the vendor's own steps, without the
    credential (it was shown once, when it was issued)."""
    if install and install["manual_steps"]:
        return install["manual_steps"], install["manual_note"]
    setup = tenant_ops.psa_vendor(tenant).webhook_setup
    if setup is None:
        return [], ""
    by_hand = setup(tenant_ops.webhook_url(tenant))
    return tenant_ops.setup_steps(by_hand), by_hand.note


def webhook_view(tenant: Tenant, install: dict[str, Any] | None = None) -> dict[str, Any]:
    """The webhook's state and the steps left in the PSA; after an install (`install`, what
    it answered) also whether it was created."""
    connection = tenant.connection
    vendor, steps, note = panel_setup(tenant)
    by_hand, by_hand_note = webhook_steps(tenant, install)
    view: dict[str, Any] = {
        "installed": bool(connection and connection.webhook_id),
        "active": bool(connection and connection.webhook_active),
        "id": connection.webhook_id if connection else None,
        "callback_url": tenant_ops.webhook_url(tenant),
        "registered_url": connection.webhook_url if connection else None,
        "panel_vendor": vendor,
        "panel_steps": steps,
        "panel_note": note,
        "webhook_steps": by_hand,
        "webhook_note": by_hand_note,
    }
    if install is not None:
        view["created"] = bool(install["created"])
    return view


def member_view(member: Member, caller: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "email": member.email,
        "role": member.role,
        "psa_member_id": member.psa_member_id,
        "created_at": member.created_at,
        "you": member.id == caller.id,
        "psa_state": member.psa_state,
        "psa_checked_at": member.psa_checked_at,
    }


def _member(caller: Member, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.tenant_id != caller.tenant_id:
        raise APIError(404, "unknown_member", f"no member {member_id} in your tenant")
    return member


def _keeps_an_admin(member: Member) -> None:
    """A tenant never loses its last admin: nobody would be left to set it up."""
    others = session.scalar(
        select(func.count(Member.id)).where(
            Member.tenant_id == member.tenant_id,
            Member.role == "admin",
            Member.id != member.id,
            Member.psa_state.is_distinct_from("deactivated"),  # who can no longer sign in
        )
    )
    if member.role == "admin" and not others:
        raise APIError(
            409,
            "last_admin",
            f"{member.name} is the tenant's last admin: make another member admin first",
        )


def settings_view(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "vendor": tenant.vendor,
        "language": tenant.language,
        "languages": LANGUAGES,
        "escalation_statuses": list(tenant.escalation_statuses or []),
        "pilot_started_on": tenant.pilot_started_on,
        "verdict_threshold_hours": tenant.verdict_threshold_hours,
    }


# --- endpoints -----------------------------------------------------------------------------


@blp.route("/connection")
class TenantConnection(MethodView):
    @blp.response(200, ConnectionViewSchema)
    def get(self):
        """Your PSA connection: the vendor's fields, plain settings, secrets as set / not set"""
        return connection_view(_admin().tenant)

    @blp.arguments(ConnectionSchema)
    @blp.response(200, ConnectionViewSchema)
    def put(self, data: dict[str, Any]):
        """Set the PSA connection. Plain fields not sent are cleared; a secret not sent (or
        blank) keeps the stored one"""
        tenant = _admin().tenant
        check_connection_fields(tenant, data)
        tenant_ops.set_connection(tenant, data)
        return connection_view(tenant)


@blp.route("/connection/test")
class TenantConnectionTest(MethodView):
    @blp.response(200, ConnectionTestSchema)
    def post(self):
        """Call the PSA with the stored connection and say what works, check by check"""
        psa = _psa(_admin().tenant)
        try:
            result = psa.test_connection()
        except AdapterError as exc:  # test_connection phrases its own; this is a last resort
            return {"ok": False, "checks": [{"what": "PSA", "ok": False, "detail": str(exc)}]}
        checks = [{"what": what, "ok": ok, "detail": detail} for what, ok, detail in result.checks]
        return {"ok": result.ok, "checks": checks}


@blp.route("/statuses")
class TenantStatuses(MethodView):
    @blp.response(200, StatusesSchema)
    def get(self):
        """The PSA's own ticket statuses, as its webhooks name them"""
        tenant = _admin().tenant
        value_is, options = status_options(_psa(tenant))
        selected = list(tenant.escalation_statuses or [])
        chosen = tenant_ops.trigger_values(tenant)
        for option in options:
            option["selected"] = bool(
                {option["value"].casefold(), option["name"].casefold()} & chosen
            )
        listed = {o["value"].casefold() for o in options} | {o["name"].casefold() for o in options}
        return {
            "value_is": value_is,
            "statuses": options,
            "selected": selected,
            "unknown_selected": [s for s in selected if s.strip().casefold() not in listed],
        }


@blp.route("/trigger")
class TenantTrigger(MethodView):
    @blp.arguments(TriggerSchema)
    @blp.response(200, TriggerViewSchema)
    def put(self, data: dict[str, Any]):
        """Choose the statuses that mean "escalated", from the PSA's own list"""
        tenant = _admin().tenant
        value_is, options = status_options(_psa(tenant))
        values: list[str] = []
        names: list[str] = []
        for given in data["escalation_statuses"]:
            option = _picked(options, given, value_is)
            if option is None:
                raise invalid(
                    "escalation_statuses", f"{given!r} is not one of the PSA's ticket statuses"
                )
            if option["value"] not in values:
                values.append(option["value"])
                names.append(option["name"])
        if value_is == "id":  # the names are kept too, to be resolved again on a new connection
            tenant_ops.store_trigger(tenant, names, dict(zip(names, values, strict=True)))
        else:
            tenant_ops.store_trigger(tenant, values, None)
        return {"escalation_statuses": values, "names": names}


@blp.route("/webhook")
class TenantWebhook(MethodView):
    @blp.response(200, WebhookViewSchema)
    def get(self):
        """The webhook's state, and the steps and values that add the panel to the PSA"""
        return webhook_view(_admin().tenant)


@blp.route("/webhook/install")
class TenantWebhookInstall(MethodView):
    @blp.response(200, WebhookViewSchema)
    def post(self):
        """Install Baton's webhook on the PSA: finds and repairs an existing one (idempotent)"""
        tenant = _admin().tenant
        _psa(tenant)  # a connection that cannot even build an adapter is a 409, not a 500
        return webhook_view(tenant, install=tenant_ops.install_webhook(tenant))


@blp.route("/members")
class TenantMembers(MethodView):
    @blp.response(200, MemberViewSchema(many=True))
    def get(self):
        """Your tenant's members"""
        admin = _admin()
        members = session.scalars(
            select(Member).where(Member.tenant_id == admin.tenant_id).order_by(Member.name)
        )
        return [member_view(m, admin) for m in members]

    @blp.arguments(MemberCreateSchema)
    @blp.response(201, NewMemberSchema)
    def post(self, data: dict[str, Any]):
        """Add a member; the API token in the answer is shown this once"""
        admin = _admin()
        member, token = tenant_ops.add_member(admin.tenant, **data)
        return {**member_view(member, admin), "token": token}


@blp.route("/psa-members")
class TenantPSAMembers(MethodView):
    @blp.arguments(PSAMembersArgs, location="query")
    @blp.response(200, PSAMemberSchema(many=True))
    def get(self, args: dict[str, Any]):
        """Your PSA's people (active ones unless asked), marked when already members; reading
        them updates each member's state in the PSA"""
        tenant = _admin().tenant
        return psa_members.list_views(tenant, _psa(tenant), args["include_inactive"])


@blp.route("/members/import")
class TenantMembersImport(MethodView):
    @blp.arguments(MembersImportSchema)
    @blp.response(201, NewMemberSchema(many=True))
    @blp.alt_response(422, description="nobody added: each pick that cannot be is named")
    def post(self, data: dict[str, Any]):
        """Add your PSA's chosen people, a role each, all or none; tokens are shown this once"""
        admin = _admin()
        made = psa_members.add_from_psa(admin.tenant, _psa(admin.tenant), data["members"])
        return [{**member_view(member, admin), "token": token} for member, token in made]


@blp.route("/members/<int:member_id>")
class TenantMember(MethodView):
    @blp.arguments(MemberUpdateSchema)
    @blp.response(200, MemberViewSchema)
    def patch(self, data: dict[str, Any], member_id: int):
        """Change a member's role (or name, email); the last admin stays an admin"""
        admin = _admin()
        member = _member(admin, member_id)
        if data.get("role", member.role) != "admin":
            _keeps_an_admin(member)
        for key, value in data.items():
            setattr(member, key, value)
        session.commit()
        return member_view(member, admin)

    @blp.response(204)
    def delete(self, member_id: int):
        """Remove a member: their panel sessions end and their sign-in links go with them;
        never the last admin"""
        admin = _admin()
        member = _member(admin, member_id)
        _keeps_an_admin(member)
        session.delete(member)
        session.commit()


@blp.route("/settings")
class TenantSettings(MethodView):
    @blp.response(200, SettingsSchema)
    def get(self):
        """Your tenant's settings: handoff language, trigger, pilot start and threshold"""
        return settings_view(_admin().tenant)

    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    def put(self, data: dict[str, Any]):
        """Set the language handoffs are written in"""
        tenant = _admin().tenant
        tenant.language = data["language"]
        session.commit()
        return settings_view(tenant)


@blp.route("/deliveries")
class TenantDeliveries(MethodView):
    @blp.arguments(DeliveriesArgs, location="query")
    @blp.response(200, DeliverySchema(many=True))
    def get(self, args: dict[str, Any]):
        """The last webhook deliveries, newest first: accepted, duplicate, ignored or refused,
        and why"""
        admin = _admin()
        delivery_audit.flush_quietly(current_app.extensions["baton"].redis)  # rows still queued
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == admin.tenant_id)
            .order_by(WebhookDelivery.received_at.desc(), WebhookDelivery.id.desc())
            .limit(args["limit"])
        )
        return list(rows)


@blp.route("/redaction-patterns")
class TenantRedactionPatterns(MethodView):
    @blp.response(200, RedactionPatternSchema(many=True))
    def get(self):
        """Your never-send terms (write-only) and patterns"""
        return tenant_patterns.list_views(_admin().tenant)

    @blp.arguments(RedactionPatternCreateSchema)
    @blp.response(201, RedactionPatternSchema)
    @blp.alt_response(422, description="refused: the reason (RE2's, for a pattern) is given")
    def post(self, data: dict[str, Any]):
        """Add a never-send term or pattern; it applies to every model call from now on"""
        return tenant_patterns.view(tenant_patterns.add(_admin().tenant, **data))


@blp.route("/redaction-patterns/<int:pattern_id>")
class TenantRedactionPattern(MethodView):
    @blp.response(204)
    def delete(self, pattern_id: int):
        """Remove a term or pattern"""
        tenant_patterns.remove(_admin().tenant, pattern_id)


@blp.route("/redaction-patterns/try")
class TenantRedactionTry(MethodView):
    @blp.arguments(RedactionTrySchema)
    @blp.response(200, RedactionTriedSchema)
    def post(self, data: dict[str, Any]):
        """Redact a sample text as a ticket would be, your own rules included"""
        return tried_view(_admin().tenant, data["text"])
