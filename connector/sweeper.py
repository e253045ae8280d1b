"""The sweeper: nothing recorded is ever dropped.

The database says what work is unfinished; Redis may have lost the job (a restart, a flush, a
worker killed mid-job). The sweep re-enqueues what has no live job, and finishes with the
fallback any handoff still pending past its deadline, so "generating" never lasts. (A job
whose worker was killed still looks started until RQ's heartbeat expires, minutes later; the
deadline is what bounds the wait, and the panel offers Regenerate.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from rq.job import Job, JobStatus
from rq.worker import Worker
from sqlalchemy import select

from connector import delivery_audit, escalated_index, escalations, notify, summary
from connector.db import session, utcnow
from connector.logs import step
from connector.models import TERMINAL_STATES, Escalation, Handoff, Notification
from connector.queue import HANDOFF, NOTIFICATIONS, WRITE_BACK

log = logging.getLogger(__name__)

# Write-backs are retried by the sweep for this long; then the PSA is considered unreachable.
WRITE_BACK_HORIZON = timedelta(days=2)
MAX_NOTIFY_ATTEMPTS = 10
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED}


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    write_backs: list[int] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)
    audit_rows: int = 0

    def as_dict(self) -> dict[str, list[int] | int]:
        return {
            "requeued": self.requeued,
            "finished_with_fallback": self.finished,
            "write_backs_requeued": self.write_backs,
            "notifications_requeued": self.notifications,
            "audit_rows_flushed": self.audit_rows,
        }


def job_alive(connection: redis.Redis, job_id: str) -> bool:
    """Queued, scheduled, or started by a worker that still has a heartbeat."""
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status(refresh=True)
    except Exception:
        return False
    if status in WAITING:
        return True
    if status == JobStatus.STARTED:
        name = job.worker_name
        if not name:
            return False
        return (
            Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
            is not None
        )
    return False


def sweep() -> SweepReport:
    runtime = escalations.runtime()
    connection = runtime.redis
    settings = runtime.settings
    deadline = timedelta(seconds=settings.ai_deadline_seconds + settings.sweep_grace_seconds)
    report = SweepReport()
    now = utcnow()

    pending = session.execute(
        select(Escalation, Handoff)
        .join(Handoff, Handoff.escalation_id == Escalation.id)
        .where(Handoff.state == "pending")
    ).all()
    for escalation, handoff in pending:
        started = max(handoff.started_at, escalation.received_at)
        if now > started + deadline:
            result = summary.fallback(
                escalation.context_snapshot
                or {
                    "ticket": {"title": escalation.ticket_title},
                    "reason": escalation.reason or "",
                },
                "no handoff within the deadline (the job was lost or stuck)",
            )
            if escalations.finish(escalation, result):
                report.finished.append(escalation.id)
                escalations.enqueue_write_back(escalation.id, replace_dead=True)
        elif not job_alive(connection, HANDOFF.job_id(escalation.id)):
            escalations.enqueue_pipeline(escalation.id, replace_dead=True)
            report.requeued.append(escalation.id)

    unwritten = session.scalars(
        select(Escalation)
        .join(Handoff, Handoff.escalation_id == Escalation.id)
        .where(
            Handoff.state.in_(TERMINAL_STATES),
            Escalation.note_id.is_(None),
            Escalation.received_at > now - WRITE_BACK_HORIZON,
        )
    ).all()
    for escalation in unwritten:
        if not job_alive(connection, WRITE_BACK.job_id(escalation.id)):
            escalations.enqueue_write_back(escalation.id, replace_dead=True)
            report.write_backs.append(escalation.id)

    # Messages to seniors whose job was lost; a message that keeps failing is given up on.
    unsent = session.scalars(
        select(Notification.escalation_id)
        .distinct()
        .join(Escalation, Escalation.id == Notification.escalation_id)
        .where(
            Notification.state != "sent",
            Notification.attempts < MAX_NOTIFY_ATTEMPTS,
            Escalation.received_at > now - WRITE_BACK_HORIZON,
        )
    ).all()
    for escalation_id in unsent:
        if not job_alive(connection, NOTIFICATIONS.job_id(escalation_id)):
            notify.enqueue(escalation_id, replace_dead=True)
            report.notifications.append(escalation_id)

    session.commit()
    # Audit rows still queued in Redis, and escalated tickets an add that failed left out.
    report.audit_rows = delivery_audit.flush_quietly(connection)
    try:
        escalated_index.repair(connection)
    except redis.RedisError as exc:
        log.warning("escalated index not repaired", extra={"fields": {"error": type(exc).__name__}})

    for escalation_id in report.requeued:
        step(escalation_id, "sweep_requeued", level=logging.WARNING)
    for escalation_id in report.finished:
        step(escalation_id, "sweep_finished_with_fallback", level=logging.WARNING)
    session.commit()
    return report
