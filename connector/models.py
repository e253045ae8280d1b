"""The tables. Every schema change is an Alembic migration under migrations/."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.db import Base, UTCDateTime, utcnow
from connector.security import new_session_key

ROLES = ("technician", "engineer", "admin")
SENIOR_ROLES = ("engineer", "admin")
HANDOFF_STATES = ("pending", "ready", "fallback")
TERMINAL_STATES = ("ready", "fallback")
AUDIENCES = ("ticket_notes", "client_update", "email_draft")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    vendor: Mapped[str] = mapped_column(String(32))
    escalation_statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    # For a PSA whose webhooks carry status ids: {status name: id}, read from the connected
    # PSA's own list; None until it could be read (the names are resolved on a webhook then).
    escalation_status_ids: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    pilot_started_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    verdict_threshold_hours: Mapped[float] = mapped_column(Float, default=1.0)
    notify_email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"teams": url, "slack": url}, Fernet-encrypted like every other secret
    chat_webhooks_encrypted: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    connection: Mapped[Connection | None] = relationship(back_populates="tenant", uselist=False)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("tenant_id", "psa_member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    psa_member_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every panel cookie carries the key it was issued with: a new key ends all of the member's
    # sessions, and a member id SQLite hands out again never inherits a removed member's cookie.
    # Members from before the key have "", like the cookies they already hold.
    session_key: Mapped[str] = mapped_column(String(32), default=new_session_key)
    # active | deactivated | missing (not in the PSA's list), stored each time the PSA's member
    # list is read (None: not read yet), so sign-in and the members table need no PSA call.
    psa_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    psa_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    tenant: Mapped[Tenant] = relationship()

    @property
    def is_senior(self) -> bool:
        return self.role in SENIOR_ROLES

    @property
    def deactivated(self) -> bool:
        """The PSA has deactivated them: Baton lets them in no more."""
        return self.psa_state == "deactivated"

    def end_sessions(self) -> None:
        self.session_key = new_session_key()


class Connection(Base):
    """A tenant's PSA connection: plain settings, and secrets encrypted with Fernet."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str] = mapped_column(Text, default="")
    webhook_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_active: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="connection")


class TicketState(Base):
    """The last status Baton saw per ticket: "entering" an escalated status is an escalation."""

    __tablename__ = "ticket_states"
    __table_args__ = (UniqueConstraint("tenant_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(200), default="")
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "delivery_key"),
        Index("ix_escalations_tenant_company", "tenant_id", "company"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    ticket_number: Mapped[str] = mapped_column(String(64), default="")
    ticket_title: Mapped[str] = mapped_column(Text, default="")
    ticket_url: Mapped[str] = mapped_column(Text, default="")
    escalated_by: Mapped[str] = mapped_column(String(200), default="")
    escalated_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivery_key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook | panel
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    context_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    context_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note_written_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What "seen before" searches (connector/related.py), set from the redacted context: the
    # client, the configuration items' names, and title, reason and description as one text.
    # PostgreSQL indexes it in a generated tsvector column, SQLite in an FTS5 table (0007).
    company: Mapped[str] = mapped_column(String(200), default="")
    configuration_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    search_text: Mapped[str] = mapped_column(Text, default="")
    # What fixed it (redacted), who and when: read from the PSA when it closes the ticket
    # ("psa"), or written by a senior on the handoff screen ("panel"), whose words are kept.
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str] = mapped_column(String(200), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The earlier escalations found when the handoff was written, as shown and sent to the model.
    related: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    tenant: Mapped[Tenant] = relationship()
    handoff: Mapped[Handoff | None] = relationship(back_populates="escalation", uselist=False)
    claimed_by: Mapped[Member | None] = relationship(foreign_keys=[claimed_by_member_id])


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(
        ForeignKey("escalations.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ai | fallback
    summary_prose: Mapped[str] = mapped_column(Text, default="")
    what_we_know: Mapped[list[str]] = mapped_column(JSON, default=list)
    likely_cause: Mapped[str] = mapped_column(Text, default="")
    suggested_steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    confidence: Mapped[str | None] = mapped_column(String(8), nullable=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    tried: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # {action, result}
    open_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The fields the model has written so far, while it writes (state "pending"); on a
    # fallback, what it had written before it failed. Never the note: only validated fields are.
    partial: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Notes added to the ticket since the snapshot this handoff was written from.
    new_notes: Mapped[int] = mapped_column(Integer, default=0)
    # The earlier escalations the model says this one is likely the same as: {ticket, why}.
    seen_before: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    escalation: Mapped[Escalation] = relationship(back_populates="handoff")


class HandoffVariant(Base):
    """An audience rewrite of the saved prose, made once and kept."""

    __tablename__ = "handoff_variants"
    __table_args__ = (UniqueConstraint("escalation_id", "audience"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | ready | failed
    text: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="transformed")
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_note_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AICall(Base):
    """Every model call, whatever its outcome: analytics are computed from these rows."""

    __tablename__ = "ai_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True
    )
    escalation_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))  # summary | tone:<audience>
    model: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(32))  # ok | timeout | api_error | invalid | ...
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Action(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(
        ForeignKey("escalations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EscalationRead(Base):
    __tablename__ = "escalation_reads"
    __table_args__ = (UniqueConstraint("escalation_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BaselineSample(Base):
    """One stopwatched manual handoff: the sales claim's baseline, never mixed with metrics."""

    __tablename__ = "baseline_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    minutes: Mapped[float] = mapped_column(Float)
    ticket: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """An audit row per inbound webhook request. Never holds a secret or the body."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_tenant_received", "tenant_id", "received_at"),
        UniqueConstraint("stream_id", name="uq_webhook_deliveries_stream_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True
    )
    tenant_slug: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # accepted|duplicate|ignored|refused|failed
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    delivery_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    escalation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Set on rows copied from the Redis audit stream: the entry id makes the copy idempotent.
    stream_id: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)


class SignInLink(Base):
    """A per-member panel sign-in link (where the PSA passes no verifiable identity).

    Signed, expiring, exchanged once for a session; only its hash is stored.
    """

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notification(Base):
    """One message per escalation, channel and target: the row makes retries idempotent."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("escalation_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    escalation_id: Mapped[int] = mapped_column(
        ForeignKey("escalations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # email | teams | slack
    target: Mapped[str] = mapped_column(String(320))  # an address, or the channel name
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_ref: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. a chat message id
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RedactionPattern(Base):
    """A tenant's own never-send term (literal) or pattern (RE2), applied before any model
    call. The value is tenant config and may be a secret itself: Fernet-encrypted, never logged."""

    __tablename__ = "redaction_patterns"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # term | pattern
    value_encrypted: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
