"""RQ queues, the jobs' ids and retry policies, the workers, and embedded mode's in-process Redis.

The database is the source of truth; the queue carries only ids. Enqueue happens after commit,
and the sweeper re-enqueues whatever was committed but lost on the way. Jobs are enqueued by
the name of their entry point in connector.jobs, which sits on top of the worker's path: the
pipeline never imports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import fakeredis
import redis
from flask import Flask
from rq import Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty
from rq.types import FunctionReferenceType

log = logging.getLogger(__name__)

HANDOFFS = "baton-handoffs"  # the pipeline: context, the one AI call, write-back
NOTIFY = "baton-notify"  # emails and chat messages; never delays a handoff
QUEUE_NAMES = (HANDOFFS, NOTIFY)

DEAD_STATES = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


@dataclass(frozen=True)
class JobKind:
    """One job per escalation and kind: its entry point, queue, id and retry policy."""

    entry_point: str  # a function of connector.jobs, by name
    queue_name: str
    id_prefix: str
    retry_intervals: tuple[int, ...]  # seconds before each retry
    timeout_seconds: int = 300

    def job_id(self, escalation_id: int) -> str:
        return f"{self.id_prefix}-{escalation_id}"

    def retry(self) -> Retry:
        return Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals))


HANDOFF = JobKind("connector.jobs.run_handoff", HANDOFFS, "handoff", (1, 3, 8))
WRITE_BACK = JobKind(
    "connector.jobs.run_write_back", HANDOFFS, "writeback", (5, 15, 30, 60, 120, 300)
)
# An SMTP server or chat endpoint down for up to about an hour still gets its messages.
NOTIFICATIONS = JobKind(
    "connector.jobs.run_notifications",
    NOTIFY,
    "notify",
    (10, 30, 120, 300, 900, 1800),
    timeout_seconds=120,
)
CHAT_FOLLOW_UP = JobKind(
    "connector.jobs.run_chat_follow_up",
    NOTIFY,
    "chat-follow-up",
    (10, 60, 300, 900),
    timeout_seconds=60,
)
# A stale handoff's note count: light and never urgent, so on the notify queue. A count already
# running may have read the notes before the latest change, so a second id queues behind it.
NOTE_COUNT = JobKind(
    "connector.jobs.run_note_count", NOTIFY, "notes", (15, 30, 60, 120), timeout_seconds=60
)
NOTE_COUNT_AGAIN = replace(NOTE_COUNT, id_prefix="notes-again")
# What fixed a closed ticket, read from the PSA: light, never urgent, retried through an outage.
RESOLUTION = JobKind(
    "connector.jobs.run_resolution", NOTIFY, "resolution", (15, 60, 300, 900), timeout_seconds=60
)
JOB_KINDS = (
    HANDOFF, WRITE_BACK, NOTIFICATIONS, CHAT_FOLLOW_UP, NOTE_COUNT, NOTE_COUNT_AGAIN, RESOLUTION
)  # fmt: skip

_embedded_server: fakeredis.FakeServer | None = None
_embedded_lock = threading.Lock()


def connect(redis_url: str | None) -> redis.Redis:
    """Real Redis from REDIS_URL; without it, one in-process stand-in shared by all threads."""
    if redis_url:
        return redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    global _embedded_server
    with _embedded_lock:
        if _embedded_server is None:
            _embedded_server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_embedded_server)


def queue(connection: redis.Redis, name: str = HANDOFFS) -> Queue:
    return Queue(name, connection=connection)


def enqueue_job(
    connection: redis.Redis, kind: JobKind, escalation_id: int, *, replace_dead: bool = False
) -> bool:
    """Enqueue this escalation's job of this kind unless it exists; True when one was enqueued."""
    return enqueue_once(
        connection,
        kind.entry_point,
        escalation_id,
        job_id=kind.job_id(escalation_id),
        queue_name=kind.queue_name,
        replace_dead=replace_dead,
        retry=kind.retry(),
        job_timeout=kind.timeout_seconds,
    )


def enqueue_once(
    connection: redis.Redis,
    func: FunctionReferenceType,
    *args: Any,
    job_id: str,
    queue_name: str = HANDOFFS,
    replace_dead: bool = False,
    retry: Retry | None = None,
    job_timeout: int = 300,
) -> bool:
    """Enqueue unless a job with this id exists; True when a job was enqueued.

    With `replace_dead`, a finished or failed job of the same id is replaced (the sweeper's
    case: the row says the work is not done, so whatever the old job did was not enough).
    """
    q = queue(connection, queue_name)
    try:
        q.enqueue(
            func,
            *args,
            job_id=job_id,
            unique=True,
            retry=retry,
            job_timeout=job_timeout,
            failure_ttl=7 * 24 * 3600,
            result_ttl=3600,
        )
        return True
    except DuplicateJobError:
        if not replace_dead:
            return False
        try:
            job = Job.fetch(job_id, connection=connection)
            status = job.get_status(refresh=True)
        except NoSuchJobError:
            status = None
        if status is not None and status not in DEAD_STATES:
            return False
        if status is not None:
            job.delete()
        return enqueue_once(
            connection,
            func,
            *args,
            job_id=job_id,
            queue_name=queue_name,
            retry=retry,
            job_timeout=job_timeout,
        )


def job_status(connection: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=True)
    except NoSuchJobError:
        return None


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job inside its Flask app's context.

    The app is built before the worker takes its first job (`flask worker`, or the web app in
    embedded mode), so the first escalation after a start is as fast as the next.
    """

    def __init__(self, *args: Any, app: Flask, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job: Job, queue: Queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)


class ThreadWorker(AppWorker):
    """An RQ worker that can live in a thread of the web process (embedded mode).

    Python allows signal handlers only in the main thread, and RQ's default job timeout uses
    SIGALRM; a timer-based death penalty and no signal handlers make it thread-safe.
    """

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        # Wait in one-second slices so that stop() takes effect: RQ's own loop only checks
        # for a stop between jobs, and a thread cannot be sent the signal that ends it.
        if timeout is None:  # burst mode: RQ does not block at all
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(1, max_idle_time=1)
            if result is not None:
                return result
        return None


class ThreadScheduler(RQScheduler):
    """RQ's scheduler (it moves retries with intervals back onto their queue), as a thread:
    RQ forks a process for it, which a web process with an in-memory Redis cannot share."""

    def _install_signal_handlers(self) -> None:
        pass


class EmbeddedWorker:
    """Embedded mode's worker, RQ scheduler and (optionally) periodic sweep, as threads."""

    def __init__(
        self,
        connection: redis.Redis,
        app: Flask,
        sweep: Callable[[], Any] | None = None,
        sweep_every_seconds: float = 30.0,
    ):
        queues = [queue(connection, n) for n in QUEUE_NAMES]
        self.worker = ThreadWorker(queues, connection=connection, app=app)
        self.scheduler = ThreadScheduler(
            queues, connection=connection, interval=1, logging_level=logging.WARNING
        )
        self.stopped = threading.Event()
        self.sweep = sweep
        self.sweep_every_seconds = sweep_every_seconds
        self.threads = [
            threading.Thread(target=self._work, name="baton-worker", daemon=True),
            threading.Thread(target=self.scheduler.work, name="baton-scheduler", daemon=True),
        ]
        if sweep is not None:
            self.threads.append(
                threading.Thread(target=self._sweep_forever, name="baton-sweeper", daemon=True)
            )

    def _work(self) -> None:
        self.worker.work(with_scheduler=False, logging_level="WARNING")

    def _sweep_forever(self) -> None:
        assert self.sweep is not None
        while not self.stopped.wait(self.sweep_every_seconds):
            try:
                self.sweep()
            except Exception:
                log.exception("sweep failed")

    def start(self) -> EmbeddedWorker:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        # request_stop() raises StopRequested in the caller when the worker is idle; the
        # worker's dequeue loop checks this flag every second instead.
        self.stopped.set()
        self.worker._stop_requested = True
        self.scheduler.request_stop()
        for thread in self.threads:
            thread.join(timeout)
