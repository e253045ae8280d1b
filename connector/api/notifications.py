"""Notification settings: email on or off and the chat webhooks per tenant, a test send, and each
member's own email opt-out. Webhook URLs are write-only: answers say only "set" or "not set"."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from connector import chat, notify
from connector import tenants as tenant_ops
from connector.auth import current_member, require_admin, require_admin_token
from connector.db import session
from connector.errors import APIError
from connector.models import Tenant

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1",
    description="Who hears of an escalation: email and chat webhooks (Teams, Slack)",
)

URL_FIELDS = {"teams_url": "teams", "slack_url": "slack"}


class NotificationSettingsSchema(Schema):
    email_enabled = fields.Boolean()
    teams_url = fields.String(metadata={"description": "'set' or 'not set'; never the URL"})
    slack_url = fields.String(metadata={"description": "'set' or 'not set'; never the URL"})
    smtp_configured = fields.Boolean(
        metadata={"description": "whether CONNECTOR_SMTP_URL is set: without it no email goes"}
    )


class NotificationSettingsUpdateSchema(Schema):
    email_enabled = fields.Boolean()
    teams_url = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "Teams incoming-webhook or Workflows URL; '' clears it"},
    )
    slack_url = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "Slack incoming-webhook URL; '' clears it"},
    )


class NotificationTestSchema(Schema):
    email_to = fields.Email(metadata={"description": "where the test email goes, if anywhere"})


class ChannelResultSchema(Schema):
    channel = fields.String(metadata={"description": "email | teams | slack"})
    status = fields.String(metadata={"description": "sent | failed | skipped"})
    message = fields.String()


class NotificationTestResultSchema(Schema):
    results = fields.List(fields.Nested(ChannelResultSchema))


class MyNotificationsSchema(Schema):
    email = fields.Boolean(required=True, metadata={"description": "email me new escalations"})


def settings_view(tenant: Tenant) -> dict[str, Any]:
    urls = chat.webhook_urls(tenant)
    return {
        "email_enabled": tenant.notify_email_enabled,
        "teams_url": "set" if "teams" in urls else "not set",
        "slack_url": "set" if "slack" in urls else "not set",
        "smtp_configured": current_app.extensions["baton"].settings.smtp is not None,
    }


def update_settings(tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    """Check every URL with the outbound guard before anything is stored."""
    allow_private = current_app.extensions["baton"].settings.allow_private_urls
    changes: dict[str, str] = {}
    for field, channel in URL_FIELDS.items():
        if field not in data:
            continue
        url = data[field].strip()
        if url:
            problem = chat.url_problem(url, allow_private=allow_private)
            if problem:
                raise APIError(422, "invalid_request", f"{field}: {problem}")
        changes[channel] = url
    if changes:
        chat.store_webhook_urls(tenant, changes)
    if "email_enabled" in data:
        tenant.notify_email_enabled = data["email_enabled"]
    session.commit()
    return settings_view(tenant)


def _panel_admin_tenant() -> tuple[Tenant, str]:
    member = current_member()
    require_admin(member)
    return member.tenant, member.email


@blp.route("/admin/tenants/<slug>/notifications")
class AdminNotifications(MethodView):
    decorators = [require_admin_token]

    @blp.response(200, NotificationSettingsSchema)
    def get(self, slug: str):
        """A tenant's notification settings (webhook URLs only as set / not set)"""
        return settings_view(tenant_ops.get_tenant(slug))

    @blp.arguments(NotificationSettingsUpdateSchema)
    @blp.response(200, NotificationSettingsSchema)
    def put(self, data: dict[str, Any], slug: str):
        """Change a tenant's notification settings; URLs are write-only, '' clears one"""
        return update_settings(tenant_ops.get_tenant(slug), data)


@blp.route("/admin/tenants/<slug>/notifications/test")
class AdminNotificationsTest(MethodView):
    decorators = [require_admin_token]

    @blp.arguments(NotificationTestSchema)
    @blp.response(200, NotificationTestResultSchema)
    def post(self, data: dict[str, Any], slug: str):
        """Send a test message to each configured channel and say what worked"""
        tenant = tenant_ops.get_tenant(slug)
        return {"results": notify.send_test(tenant, data.get("email_to"))}


@blp.route("/tenant/notifications")
class TenantNotifications(MethodView):
    @blp.response(200, NotificationSettingsSchema)
    def get(self):
        """Your tenant's notification settings (admins)"""
        tenant, _email = _panel_admin_tenant()
        return settings_view(tenant)

    @blp.arguments(NotificationSettingsUpdateSchema)
    @blp.response(200, NotificationSettingsSchema)
    def put(self, data: dict[str, Any]):
        """Change your tenant's notification settings (admins); URLs are write-only"""
        tenant, _email = _panel_admin_tenant()
        return update_settings(tenant, data)


@blp.route("/tenant/notifications/test")
class TenantNotificationsTest(MethodView):
    @blp.response(200, NotificationTestResultSchema)
    def post(self):
        """Send a test message to each configured channel (the email to you) and say what worked"""
        tenant, own_email = _panel_admin_tenant()
        return {"results": notify.send_test(tenant, own_email)}


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @blp.response(200, MyNotificationsSchema)
    def get(self):
        """Whether you get an email for each new escalation"""
        return {"email": current_member().notify_email}

    @blp.arguments(MyNotificationsSchema)
    @blp.response(200, MyNotificationsSchema)
    def put(self, data: dict[str, Any]):
        """Switch your escalation emails on or off"""
        member = current_member()
        member.notify_email = data["email"]
        session.commit()
        return {"email": member.notify_email}
