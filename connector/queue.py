"""RQ queues, the jobs' ids and retry policies, the workers, and embedded mode's in-process Redis.

The database is the source of truth; the queue carries only ids. Enqueue happens after commit,
and the sweeper re-enqueues whatever was committed but lost on the way. Jobs are enqueued by
the name of their entry point in connector.jobs, which sits on top of the worker's path: the
pipeline never imports it.

Fair dispatch (issue 19): each tenant has its own queue in each tier ("baton-handoffs:7"), and
workers take from them with RQ's round_robin strategy, so a tenant with a burst of 200 holds
one turn in N, not the whole pool. The handoff tier always comes before the notify tier
(notifications, write-backs, note counts). Workers and schedulers find tenant queues in RQ's own
registry of queues (the set RQ adds a queue to before it pushes the queue's first job), re-read
between jobs and while idle, once a second.
"""

from __future__ import annotations

import logging
import threading
import time
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
from rq.scripts import UNIQUE_ENQUEUE_SCRIPT, _build_hset_args
from rq.timeouts import TimerDeathPenalty
from rq.types import FunctionReferenceType
from rq.worker import DequeueStrategy

log = logging.getLogger(__name__)

HANDOFFS = "baton-handoffs"  # the pipeline: context and the one AI call
NOTIFY = "baton-notify"  # write-backs, emails, chat messages, counts; never delays a handoff
QUEUE_NAMES = (HANDOFFS, NOTIFY)  # the tiers, in the order workers serve them
REGISTRY = Queue.redis_queues_keys  # every queue RQ has enqueued on; only Queue.delete() removes
LEARN_EVERY_SECONDS = 1  # how long an idle worker waits before it looks for new queues

RESULT_TTL_SECONDS = 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600  # a failed job stays a week for whoever looks into it
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
# The handoff is in the panel once generated; the note in the PSA may follow other tenants'.
WRITE_BACK = JobKind(
    "connector.jobs.run_write_back", NOTIFY, "writeback", (5, 15, 30, 60, 120, 300)
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


def tenant_queue_name(tier: str, tenant_id: int | None) -> str:
    """The tenant's queue in a tier; without a tenant, the tier's shared queue."""
    return tier if tenant_id is None else f"{tier}:{tenant_id}"


def tier_of(queue_name: str) -> str:
    return queue_name.split(":", 1)[0]


def tier_rank(queue_name: str) -> int:
    tier = tier_of(queue_name)
    return QUEUE_NAMES.index(tier) if tier in QUEUE_NAMES else len(QUEUE_NAMES)


def known_queue_names(connection: redis.Redis, tiers: set[str]) -> list[str]:
    """The tiers' shared queues and every tenant queue of them, handoff tier first."""
    prefix = Queue.redis_queue_namespace_prefix  # the registry holds keys: "rq:queue:<name>"
    keys = (k.decode() if isinstance(k, bytes) else str(k) for k in connection.smembers(REGISTRY))
    names = {k.removeprefix(prefix) for k in keys if k.startswith(prefix)} | tiers
    return sorted((n for n in names if tier_of(n) in tiers), key=lambda n: (tier_rank(n), n))


def enqueue_job(
    connection: redis.Redis,
    kind: JobKind,
    escalation_id: int,
    *,
    tenant_id: int | None,
    replace_dead: bool = False,
) -> bool:
    """Enqueue this escalation's job of this kind on its tenant's queue unless it exists; True
    when one was enqueued."""
    return enqueue_once(
        connection,
        kind.entry_point,
        escalation_id,
        job_id=kind.job_id(escalation_id),
        queue_name=tenant_queue_name(kind.queue_name, tenant_id),
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
    try:  # RQ registers the queue before it pushes the job: no worker misses it
        q.enqueue(
            func,
            *args,
            job_id=job_id,
            unique=True,
            retry=retry,
            job_timeout=job_timeout,
            failure_ttl=FAILURE_TTL_SECONDS,
            result_ttl=RESULT_TTL_SECONDS,
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


def enqueue_new(
    connection: redis.Redis,
    kinds: tuple[JobKind, ...],
    escalation_id: int,
    *,
    tenant_id: int,
    before: Callable[[redis.client.Pipeline], object] = lambda pipe: None,
) -> list[bool]:
    """A new escalation's jobs, each unless a job with its id exists, sent in one pipeline
    after the commands `before` adds (the live event, which so goes out first); per kind,
    True when enqueued. redis-py checks the script is loaded first: two round trips in all.

    RQ's unique enqueue runs its script on the connection, outside any pipeline; here the same
    script gets the same job hash through one pipeline. These are RQ's internals, which is why
    rq is pinned; tests/integration/test_enqueue_new.py compares the result with RQ's enqueue.
    """
    pipe = connection.pipeline(transaction=False)
    before(pipe)
    sent_before = len(pipe)
    script = pipe.register_script(UNIQUE_ENQUEUE_SCRIPT)
    for kind in kinds:
        q = queue(connection, tenant_queue_name(kind.queue_name, tenant_id))
        job = q.create_job(
            kind.entry_point,
            args=(escalation_id,),
            job_id=kind.job_id(escalation_id),
            retry=kind.retry(),
            timeout=kind.timeout_seconds,
            failure_ttl=FAILURE_TTL_SECONDS,
            result_ttl=RESULT_TTL_SECONDS,
        )
        q._prepare_for_queue(job)  # origin, enqueued_at, status: what RQ's enqueue sets
        pipe.sadd(REGISTRY, q.key)  # as RQ does: the queue is known before its first job
        ttl = job.ttl if job.ttl is not None else -1
        script(keys=[job.key, q.key], args=[job.id, "R", ttl, *_build_hset_args(job)], client=pipe)
    results = pipe.execute(raise_on_error=False)
    for failed in (r for r in results[:sent_before] if isinstance(r, Exception)):
        log.warning(
            "a command sent with new jobs failed",
            extra={"fields": {"error": type(failed).__name__}},
        )
    enqueued = results[sent_before + 1 :: 2]  # each job's script answer, after its SADD
    for answer in enqueued:
        if isinstance(answer, Exception):
            raise answer
    return [answer == 1 for answer in enqueued]


def job_status(connection: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=True)
    except NoSuchJobError:
        return None


class TenantScheduler(RQScheduler):
    """RQ's scheduler (it moves retries with intervals back onto their queue), learning the
    tenant queues of its tiers as they appear: a retry on a queue no scheduler holds would
    stay scheduled for ever."""

    def __init__(self, queues: Any, *args: Any, **kwargs: Any):
        super().__init__(queues, *args, **kwargs)
        self.tiers = {tier_of(name) for name in self._queue_names}

    def enqueue_scheduled_jobs(self) -> None:
        new = set(known_queue_names(self.connection, self.tiers)) - self._queue_names
        if new:
            self._queue_names |= new
            self.acquire_locks()  # also resets the registries it reads
        super().enqueue_scheduled_jobs()


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job inside its Flask app's context and serves, round robin,
    every tenant queue of the tiers it was given (a worker on "baton-handoffs" also serves
    "baton-handoffs:7"), the handoff tier first.

    The app is built before the worker takes its first job (`flask worker`, or the web app in
    embedded mode), so the first escalation after a start is as fast as the next.
    """

    def __init__(self, queues: Any, *args: Any, app: Flask, **kwargs: Any):
        super().__init__(queues, *args, **kwargs)
        self.app = app
        self.tiers = {tier_of(q.name) for q in self.queues}
        self.learn_queues()

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("dequeue_strategy", DequeueStrategy.ROUND_ROBIN)
        return super().work(*args, **kwargs)

    def learn_queues(self) -> None:
        """Add the tenant queues that appeared since the last look, keeping the rotation."""
        known = {q.name for q in self.queues}
        new = [n for n in known_queue_names(self.connection, self.tiers) if n not in known]
        if not new:
            return
        added = [Queue(n, connection=self.connection, serializer=self.serializer) for n in new]
        self.queues = [*self.queues, *added]
        # A new tenant has had no turn yet: its queue goes first in its tier, not after the
        # queue just served (which would give a bursting tenant the next turn again).
        self._ordered_queues = sorted(
            [*added, *self._ordered_queues], key=lambda q: tier_rank(q.name)
        )

    def reorder_queues(self, reference_queue: Queue) -> None:
        # RQ rotates the list past the queue just served; the stable sort keeps that rotation
        # within each tier and puts every handoff queue before every notify queue.
        super().reorder_queues(reference_queue)
        self._ordered_queues.sort(key=lambda q: tier_rank(q.name))

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        self.learn_queues()
        if timeout is None:  # burst mode: RQ does not block at all
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        # Wait in short slices: between them the worker learns new tenants' queues (a blocking
        # pop only watches the queues it was given) and sees a stop request (a thread cannot
        # be sent the signal that ends RQ's own wait).
        idle_since = time.monotonic()
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(
                LEARN_EVERY_SECONDS, max_idle_time=LEARN_EVERY_SECONDS
            )
            if result is not None:
                return result
            self.flush_audit()
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                return None
            self.learn_queues()
        return None

    def execute_job(self, job: Job, queue: Queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)
        self.flush_audit()

    def flush_audit(self) -> None:
        """Copy the webhook audit rows queued in Redis into the database (between jobs, and
        while idle: workers always run, so the rows wait seconds at most)."""
        from connector import delivery_audit
        from connector.db import session

        with self.app.app_context():
            try:
                delivery_audit.flush_quietly(self.connection)
            finally:
                session.remove()

    def _start_scheduler(self, burst: bool = False, *args: Any, **kwargs: Any) -> None:
        # RQ builds its own RQScheduler here, which would never learn new tenants' queues; the
        # rest is RQ's: take the locks, then run it in its own process (or once, in burst mode).
        self.scheduler = TenantScheduler(
            self.queues, connection=self.connection, serializer=self.serializer,
            logging_level=logging.WARNING,
        )  # fmt: skip
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()


class ThreadWorker(AppWorker):
    """An RQ worker that can live in a thread of the web process (embedded mode).

    Python allows signal handlers only in the main thread, and RQ's default job timeout uses
    SIGALRM; a timer-based death penalty and no signal handlers make it thread-safe.
    """

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


class ThreadScheduler(TenantScheduler):
    """The scheduler as a thread: RQ forks a process for it, which a web process with an
    in-memory Redis cannot share."""

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
