"""RQ job functions: thin. Each takes an id, loads, calls the pipeline, saves.

Production workers (`rq worker`) build the app once per process; embedded mode's worker
thread uses the web app it was started from.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from flask import Flask, has_app_context
from rq import Retry, get_current_job

_app: Flask | None = None


def use_app(app: Flask) -> None:
    global _app
    _app = app


def app_context() -> AbstractContextManager[Any]:
    global _app
    if has_app_context():
        return nullcontext()
    if _app is None:
        from connector.app import create_app

        _app = create_app(start_worker=False)
    return _app.app_context()


def handoff_job_id(escalation_id: int) -> str:
    return f"handoff-{escalation_id}"


def write_back_job_id(escalation_id: int) -> str:
    return f"writeback-{escalation_id}"


def notify_job_id(escalation_id: int) -> str:
    return f"notify-{escalation_id}"


def chat_follow_up_job_id(escalation_id: int) -> str:
    return f"chat-follow-up-{escalation_id}"


def note_count_job_ids(escalation_id: int) -> tuple[str, str]:
    return f"notes-{escalation_id}", f"notes-{escalation_id}-next"


def handoff_retry() -> Retry:
    return Retry(max=3, interval=[1, 3, 8])


def write_back_retry() -> Retry:
    return Retry(max=6, interval=[5, 15, 30, 60, 120, 300])


def notify_retry() -> Retry:
    # An SMTP server or chat endpoint down for up to about an hour still gets its messages.
    return Retry(max=6, interval=[10, 30, 120, 300, 900, 1800])


def chat_follow_up_retry() -> Retry:
    return Retry(max=4, interval=[10, 60, 300, 900])


def note_count_retry() -> Retry:
    # While the handoff is still being written, and through a short PSA outage.
    return Retry(max=4, interval=[15, 30, 60, 120])


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def run_handoff(escalation_id: int) -> str | None:
    from connector import escalations

    with app_context():
        handoff = escalations.generate(escalation_id, final_attempt=_final_attempt())
        return handoff.state if handoff else None


def run_write_back(escalation_id: int) -> str | None:
    from connector import escalations

    with app_context():
        return escalations.write_back(escalation_id)


def run_notifications(escalation_id: int) -> None:
    from connector import notify

    with app_context():
        notify.deliver(escalation_id)


def run_chat_follow_up(escalation_id: int) -> None:
    from connector import notify

    with app_context():
        notify.follow_up(escalation_id)


def run_note_count(escalation_id: int) -> int | None:
    from connector import new_notes

    with app_context():
        return new_notes.count(escalation_id)
