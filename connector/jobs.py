"""RQ entry points: thin. Each takes an id and calls the pipeline.

They sit on top of the worker's path: the worker (connector.queue.AppWorker) runs each inside
its app's context, and the pipeline enqueues them by name without importing this module.
"""

from __future__ import annotations

from flask import Flask
from rq import get_current_job
from sqlalchemy import select

from connector import ai, escalations, new_notes, notify, resolutions
from connector.db import session
from connector.models import Escalation


def warm_up(app: Flask) -> None:
    """What a worker does before it takes a job, so that its first is as fast as the next: the
    model client's SSL context and a database connection are made now."""
    ai.prepare_client()
    with app.app_context():
        session.execute(select(Escalation.id).limit(1))  # also configures the ORM's mappers


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def run_handoff(escalation_id: int) -> str | None:
    handoff = escalations.generate(escalation_id, final_attempt=_final_attempt())
    return handoff.state if handoff else None


def run_write_back(escalation_id: int) -> str | None:
    return escalations.write_back(escalation_id)


def run_notifications(escalation_id: int) -> None:
    notify.deliver(escalation_id)


def run_chat_follow_up(escalation_id: int) -> None:
    notify.follow_up(escalation_id)


def run_note_count(escalation_id: int) -> int | None:
    return new_notes.count(escalation_id)


def run_resolution(escalation_id: int) -> str | None:
    return resolutions.capture(escalation_id)
