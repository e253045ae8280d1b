"""Tell the seniors: one email per engineer and admin, one message per chat channel, at once.

Each (escalation, channel, target) is a `notifications` row; a row already `sent` is never sent
again, so a retried job or a second webhook delivery sends nothing twice. A failure is written
to its row and raised at the end, so RQ retries the job (only the unsent rows) with backoff, on
its own queue: nothing here can delay or fail the handoff.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

from flask import current_app
from markupsafe import Markup
from sqlalchemy import func, select, update

from connector import chat, mailer
from connector.config import Settings
from connector.db import insert_if_absent, session, utcnow
from connector.dispatch import enqueue as enqueue_job
from connector.logs import step
from connector.models import (
    SENIOR_ROLES,
    TERMINAL_STATES,
    Escalation,
    Member,
    Notification,
    Tenant,
)
from connector.queue import CHAT_FOLLOW_UP, NOTIFICATIONS

log = logging.getLogger(__name__)

FIELD_LIMIT = 600  # a reason or a cause longer than this is cut in messages; the panel has all


class NotificationsFailed(Exception):
    """Some messages did not go out; raised so that RQ retries the job."""


# --- what a message says -----------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Everything a message says, as plain text; each format escapes it its own way."""

    escalation_id: int
    tenant_name: str
    ticket: str  # "#104512"
    title: str
    escalated_by: str
    reason: str
    link: str
    state: str  # pending | ready | fallback
    likely_cause: str
    confidence: str
    failure_reason: str

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def _one_line(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _clip(text: str, limit: int = FIELD_LIMIT) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def settings() -> Settings:
    return current_app.extensions["baton"].settings


def panel_link(escalation_id: int) -> str:
    return f"{settings().public_url}/panel/escalations/{escalation_id}"


def facts_of(escalation: Escalation) -> Facts:
    escalator = (
        session.get(Member, escalation.escalated_by_member_id)
        if escalation.escalated_by_member_id
        else None
    )
    handoff = escalation.handoff
    return Facts(
        escalation_id=escalation.id,
        tenant_name=escalation.tenant.name,
        ticket=f"#{escalation.ticket_number or escalation.ticket_id}",
        title=_one_line(escalation.ticket_title, 200) or "(no title)",
        escalated_by=(escalator.name if escalator else escalation.escalated_by) or "a technician",
        reason=_clip(escalation.reason or "") or "no reason given",
        link=panel_link(escalation.id),
        state=handoff.state if handoff else "pending",
        likely_cause=_clip(handoff.likely_cause) if handoff else "",
        confidence=(handoff.confidence or "") if handoff else "",
        failure_reason=_one_line(handoff.failure_reason or "", 200) if handoff else "",
    )


def status_line(facts: Facts) -> str:
    """The handoff as far as it has got, in one plain sentence."""
    if facts.state == "ready":
        confidence = f" ({facts.confidence} confidence)" if facts.confidence else ""
        return f"Likely cause{confidence}: {facts.likely_cause or 'not stated'}"
    if facts.state == "fallback":
        why = f" ({facts.failure_reason})" if facts.failure_reason else ""
        return f"AI unavailable{why}: the panel shows what Baton extracted from the ticket."
    return "The AI handoff is being written; it will be waiting in the panel."


def follow_up_line(facts: Facts) -> str:
    if facts.state == "ready":
        confidence = f" ({facts.confidence} confidence)" if facts.confidence else ""
        return f"Handoff ready for {facts.ticket}: likely cause {facts.likely_cause}{confidence}"
    why = facts.failure_reason or "no answer in time"
    return f"AI unavailable for {facts.ticket}: {why}. The panel shows what was extracted."


# --- email -------------------------------------------------------------------------------


def email_subject(facts: Facts) -> str:
    return _one_line(f"Escalated {facts.ticket}: {facts.title}", 180)


def email_text(facts: Facts, recipient: str) -> str:
    return (
        f"Hi {recipient},\n\n"
        f"{facts.escalated_by} escalated ticket {facts.ticket}: {facts.title}\n\n"
        f"Why: {facts.reason}\n\n"
        f"{status_line(facts)}\n\n"
        f"Pick it up: {facts.link}\n\n"
        f"-- \nBaton, for the engineers and admins of {facts.tenant_name}. "
        "You can switch these emails off in Baton's panel.\n"
    )


_HTML = Markup(
    """<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif;
color: #1b1f24;">
<p>Hi {recipient},</p>
<p><strong>{escalated_by}</strong> escalated ticket <strong>{ticket}</strong>: {title}</p>
<p><strong>Why:</strong> {reason}</p>
<p>{status}</p>
<p><a href="{link}" style="display: inline-block; padding: 8px 14px; background: #0b5cad;
color: #ffffff; text-decoration: none; border-radius: 4px;">Pick it up in Baton</a></p>
<p style="color: #57606a; font-size: 12px;">Baton, for the engineers and admins of {tenant}.
You can switch these emails off in Baton's panel.</p>
</body></html>
"""
)


def email_html(facts: Facts, recipient: str) -> str:
    # Markup.format escapes every argument: ticket text is data, never markup.
    return str(
        _HTML.format(
            recipient=recipient,
            escalated_by=facts.escalated_by,
            ticket=facts.ticket,
            title=facts.title,
            reason=facts.reason,
            status=status_line(facts),
            link=facts.link,
            tenant=facts.tenant_name,
        )
    )


def _mail_domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


def compose_email(
    facts: Facts, *, name: str, email: str, mail_from: str, message_key: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = email_subject(facts)
    message["From"] = mail_from
    message["To"] = formataddr((_one_line(name, 100), email))
    message["Date"] = formatdate(localtime=False)
    # A stable id per escalation and member: a mail system that sees it twice keeps one copy.
    message["Message-ID"] = f"<baton.{message_key}@{_mail_domain(mail_from)}>"
    message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to Baton
    message["X-Auto-Response-Suppress"] = "All"
    first_name = _one_line(name, 100).split(" ")[0] or "there"
    message.set_content(email_text(facts, first_name))
    message.add_alternative(email_html(facts, first_name), subtype="html")
    return message


def valid_address(email: str) -> bool:
    try:
        Address(addr_spec=email)
    except (ValueError, IndexError):
        return False
    return "@" in email


# --- chat --------------------------------------------------------------------------------

_TEAMS_MARKDOWN = re.compile(r"([\\`*_\[\]~])")


def teams_text(text: str) -> str:
    """Adaptive Card text blocks render a markdown subset: ticket text must not make links."""
    return _TEAMS_MARKDOWN.sub(r"\\\1", text)


def slack_text(text: str, limit: int = 1900) -> str:
    """Slack mrkdwn's three control characters; escaping < also stops <!channel> mentions.

    Cut to `limit` after escaping: Slack refuses a field over 2,000 characters.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:limit]


def _teams_envelope(body: list[dict[str, Any]], link: str) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": [{"type": "Action.OpenUrl", "title": "Pick it up", "url": link}],
                    "msteams": {"width": "Full"},
                },
            }
        ],
    }


def teams_card(facts: Facts) -> dict[str, Any]:
    return _teams_envelope(
        [
            {
                "type": "TextBlock",
                "text": teams_text(f"Escalated {facts.ticket}: {facts.title}"),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Escalated by", "value": teams_text(facts.escalated_by)},
                    {"title": "Why", "value": teams_text(facts.reason)},
                ],
            },
            {"type": "TextBlock", "text": teams_text(status_line(facts)), "wrap": True},
        ],
        facts.link,
    )


def slack_message(facts: Facts) -> dict[str, Any]:
    headline = f"Escalated {facts.ticket}: {facts.title}"
    return {
        "text": slack_text(f"{headline} ({facts.escalated_by}): {facts.link}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _one_line(headline, 150)}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Escalated by*\n{slack_text(facts.escalated_by)}"},
                    {"type": "mrkdwn", "text": f"*Why*\n{slack_text(facts.reason)}"},
                ],
            },
            {"type": "section", "text": {"type": "plain_text", "text": status_line(facts)}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Pick it up"},
                        "url": facts.link,
                        "style": "primary",
                    }
                ],
            },
        ],
    }


def chat_message(channel: str, facts: Facts) -> dict[str, Any]:
    return teams_card(facts) if channel == "teams" else slack_message(facts)


def chat_follow_up(channel: str, facts: Facts) -> dict[str, Any]:
    """Incoming webhooks cannot edit what they posted, so the cause comes as a short reply."""
    line = follow_up_line(facts)
    if channel == "teams":
        return _teams_envelope(
            [{"type": "TextBlock", "text": teams_text(line), "wrap": True}], facts.link
        )
    return {
        "text": slack_text(f"{line} {facts.link}"),
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": _one_line(line, 2900)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{facts.link}|Open in Baton>"}],
            },
        ],
    }


# --- who hears, and the rows that keep it to once ------------------------------------------


def recipients(escalation: Escalation) -> list[Member]:
    """Engineers and admins of the tenant, not the one who escalated, not the opted-out, not
    those the PSA has deactivated."""
    members = session.scalars(
        select(Member)
        .where(
            Member.tenant_id == escalation.tenant_id,
            Member.role.in_(SENIOR_ROLES),
            Member.notify_email.is_(True),
            Member.psa_state.is_distinct_from("deactivated"),
        )
        .order_by(Member.id)
    )
    seen: set[str] = set()
    chosen: list[Member] = []
    for member in members:
        address = (member.email or "").strip().lower()
        if member.id == escalation.escalated_by_member_id or address in seen:
            continue
        if not valid_address(member.email or ""):
            continue
        seen.add(address)
        chosen.append(member)
    return chosen


def _row(escalation: Escalation, channel: str, target: str, member_id: int | None) -> Notification:
    """Insert-or-get the one row for this escalation, channel and target."""
    insert_if_absent(
        Notification,
        ["escalation_id", "channel", "target"],
        tenant_id=escalation.tenant_id,
        escalation_id=escalation.id,
        member_id=member_id,
        channel=channel,
        target=target,
        state="pending",
        attempts=0,
        created_at=utcnow(),
    )
    session.commit()
    row = session.scalar(
        select(Notification).where(
            Notification.escalation_id == escalation.id,
            Notification.channel == channel,
            Notification.target == target,
        )
    )
    assert row is not None
    return row


def _mark_sent(row: Notification, *, followed_up: bool = False) -> None:
    now = utcnow()
    row.state = "sent"
    row.sent_at = now
    row.attempts += 1
    row.last_error = None
    if followed_up:
        row.followed_up_at = now  # the message already carried the likely cause
    session.commit()


def _mark_failed(row: Notification, error: str) -> None:
    row.state = "failed"
    row.attempts += 1
    row.last_error = error[:500]
    session.commit()


def _send_emails(facts: Facts, pending: list[tuple[Member, Notification]]) -> list[str]:
    config = settings()
    assert config.smtp is not None
    failures: list[str] = []
    try:
        with mailer.connection(config.smtp) as client:
            for member, row in pending:
                try:
                    message = compose_email(
                        facts,
                        name=member.name,
                        email=member.email,
                        mail_from=config.mail_from,
                        message_key=f"escalation-{facts.escalation_id}.member-{member.id}",
                    )
                    mailer.send(client, message)
                except mailer.MailError as exc:
                    _mark_failed(row, str(exc))
                    failures.append(f"email to member {member.id}: {exc}")
                else:
                    _mark_sent(row)
    except mailer.MailError as exc:  # no session at all: every pending email waits for a retry
        for _member, row in pending:
            if row.state != "sent":
                _mark_failed(row, str(exc))
        failures.append(f"email: {exc}")
    return failures


def deliver(escalation_id: int) -> None:
    """Send whatever has not been sent for this escalation; raise if anything failed."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        return
    tenant = escalation.tenant
    config = settings()
    facts = facts_of(escalation)
    failures: list[str] = []

    if tenant.notify_email_enabled and config.smtp is not None:
        rows = [
            (m, _row(escalation, "email", m.email.strip().lower(), m.id))
            for m in recipients(escalation)
        ]
        pending = [(m, r) for m, r in rows if r.state != "sent"]
        if pending:
            failures += _send_emails(facts, pending)
    elif tenant.notify_email_enabled:
        step(escalation_id, "email_skipped", reason="CONNECTOR_SMTP_URL is not set")

    for channel, url in chat.webhook_urls(tenant).items():
        row = _row(escalation, channel, channel, None)
        if row.state == "sent":
            continue
        try:
            chat.post(
                channel, url, chat_message(channel, facts), allow_private=config.allow_private_urls
            )
        except chat.ChatError as exc:
            _mark_failed(row, str(exc))
            failures.append(str(exc))
        else:
            _mark_sent(row, followed_up=facts.terminal)

    # The handoff may have finished while we were sending: its follow-up job could have found
    # none of our rows sent yet, so the last one to look does it (follow_up claims each row).
    session.expire_all()
    handoff = escalation.handoff
    if handoff is not None and handoff.state in TERMINAL_STATES:
        failures += follow_up(escalation_id, raise_errors=False)

    sent = session.scalar(
        select(func.count(Notification.id)).where(
            Notification.escalation_id == escalation_id, Notification.state == "sent"
        )
    )
    step(escalation_id, "notified", sent=sent, failures=len(failures))
    if failures:
        raise NotificationsFailed("; ".join(failures)[:1000])


def follow_up(escalation_id: int, *, raise_errors: bool = True) -> list[str]:
    """Post the likely cause after each chat message that went out before the handoff was done."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.handoff is None:
        return []
    if escalation.handoff.state not in TERMINAL_STATES:
        return []
    urls = chat.webhook_urls(escalation.tenant)
    rows = session.scalars(
        select(Notification).where(
            Notification.escalation_id == escalation_id,
            Notification.channel.in_(chat.CHANNELS),
            Notification.state == "sent",
            Notification.followed_up_at.is_(None),
        )
    ).all()
    facts = facts_of(escalation)
    failures: list[str] = []
    for row in rows:
        url = urls.get(row.channel)
        if not url:
            continue
        # One conditional UPDATE claims the follow-up, so two jobs never both post it.
        claimed: int = session.execute(  # type: ignore[attr-defined]
            update(Notification)
            .where(Notification.id == row.id, Notification.followed_up_at.is_(None))
            .values(followed_up_at=utcnow())
        ).rowcount
        session.commit()
        if not claimed:
            continue
        try:
            chat.post(
                row.channel,
                url,
                chat_follow_up(row.channel, facts),
                allow_private=settings().allow_private_urls,
            )
        except chat.ChatError as exc:
            session.execute(
                update(Notification)
                .where(Notification.id == row.id)
                .values(followed_up_at=None, last_error=f"follow-up: {exc}"[:500])
            )
            session.commit()
            failures.append(f"follow-up {exc}")
        else:
            step(escalation_id, "chat_followed_up", channel=row.channel, state=facts.state)
    if failures and raise_errors:
        raise NotificationsFailed("; ".join(failures)[:1000])
    return failures


# --- enqueueing ----------------------------------------------------------------------------


def enqueue(
    escalation_id: int, *, tenant_id: int | None = None, replace_dead: bool = False
) -> bool:
    """Queue the notifications job; a failure is logged, never raised into the handoff's path."""
    try:
        return enqueue_job(
            current_app.extensions["baton"].redis,
            NOTIFICATIONS,
            escalation_id,
            tenant_id=tenant_id,
            replace_dead=replace_dead,
        )
    except Exception as exc:  # the handoff must go on whatever Redis says
        step(
            escalation_id, "notify_enqueue_failed", level=logging.WARNING, error=type(exc).__name__
        )
        return False


def enqueue_follow_up(escalation: Escalation) -> bool:
    """After the handoff is saved: queue the chat follow-up, if the tenant has chat at all."""
    if not escalation.tenant.chat_webhooks_encrypted:
        return False
    try:
        return enqueue_job(current_app.extensions["baton"].redis, CHAT_FOLLOW_UP, escalation.id)
    except Exception as exc:  # as above
        step(
            escalation.id,
            "follow_up_enqueue_failed",
            level=logging.WARNING,
            error=type(exc).__name__,
        )
        return False


# --- the settings screen's "send a test" ---------------------------------------------------


def send_test(tenant: Tenant, email_to: str | None) -> list[dict[str, str]]:
    """One test message per channel; what happened, per channel, in plain words."""
    config = settings()
    link = f"{config.public_url}/panel"
    facts = Facts(
        escalation_id=0,
        tenant_name=tenant.name,
        ticket="#TEST",
        title="Baton test message",
        escalated_by="Baton",
        reason="An admin asked for a test message to check this channel.",
        link=link,
        state="pending",
        likely_cause="",
        confidence="",
        failure_reason="",
    )
    results: list[dict[str, str]] = []
    results.append(_test_email(tenant, facts, email_to))
    urls = chat.webhook_urls(tenant)
    for channel in chat.CHANNELS:
        label = chat.LABELS[channel]
        if channel not in urls:
            results.append(
                {"channel": channel, "status": "skipped", "message": f"{label} is not set up."}
            )
            continue
        try:
            chat.post(
                channel,
                urls[channel],
                chat_message(channel, facts),
                allow_private=config.allow_private_urls,
            )
        except chat.ChatError as exc:
            results.append({"channel": channel, "status": "failed", "message": f"{exc}."})
        else:
            results.append(
                {
                    "channel": channel,
                    "status": "sent",
                    "message": f"Sent a test message to {label}.",
                }
            )
    return results


def _test_email(tenant: Tenant, facts: Facts, email_to: str | None) -> dict[str, str]:
    config = settings()
    if not tenant.notify_email_enabled:
        return {"channel": "email", "status": "skipped", "message": "Email is switched off."}
    if config.smtp is None:
        return {
            "channel": "email",
            "status": "skipped",
            "message": "No SMTP server is configured (CONNECTOR_SMTP_URL).",
        }
    if not email_to:
        return {
            "channel": "email",
            "status": "skipped",
            "message": "No address to send a test to: give email_to.",
        }
    message = compose_email(
        facts,
        name="",
        email=email_to,
        mail_from=config.mail_from,
        message_key=f"test-{tenant.id}-{utcnow().timestamp():.0f}",
    )
    try:
        with mailer.connection(config.smtp) as client:
            mailer.send(client, message)
    except mailer.MailError as exc:
        return {"channel": "email", "status": "failed", "message": f"Email failed: {exc}."}
    return {"channel": "email", "status": "sent", "message": f"Sent a test email to {email_to}."}
