"""Jobs enqueued with deterministic ids run in embedded mode (worker thread) and on real Redis."""

from __future__ import annotations

import os
import time

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.job import JobStatus

from connector.queue import HANDOFFS, EmbeddedWorker, connect, enqueue_once, job_status, queue
from tests import jobs_for_tests


def test_job_runs_on_real_redis():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL must point at Redis for this test (./dev test sets it)")
    connection = connect(url)
    connection.flushdb()
    assert enqueue_once(connection, jobs_for_tests.add, 2, 3, job_id="add-1")
    assert not enqueue_once(connection, jobs_for_tests.add, 2, 3, job_id="add-1")  # deduplicated
    SimpleWorker([queue(connection, HANDOFFS)], connection=connection).work(burst=True)
    assert job_status(connection, "add-1") == JobStatus.FINISHED
    # The sweeper's case: a finished job of the same id is replaced when asked.
    assert enqueue_once(connection, jobs_for_tests.add, 1, 1, job_id="add-1", replace_dead=True)


def test_job_runs_in_embedded_worker_thread_inside_its_app():
    connection = connect(None)
    worker = EmbeddedWorker(connection, Flask("the-web-app")).start()
    try:
        assert enqueue_once(connection, jobs_for_tests.add, 20, 22, job_id="embedded-add")
        assert enqueue_once(connection, jobs_for_tests.app_name, job_id="embedded-app")
        deadline = time.monotonic() + 30
        while job_status(connection, "embedded-app") != JobStatus.FINISHED:
            assert time.monotonic() < deadline, "embedded worker did not run the jobs"
            time.sleep(0.02)
        from rq.job import Job

        assert Job.fetch("embedded-add", connection=connection).return_value() == 42
        assert Job.fetch("embedded-app", connection=connection).return_value() == "the-web-app"
    finally:
        worker.stop()


def test_flask_worker_runs_each_job_inside_the_app(app):
    connection = app.extensions["baton"].redis
    if app.extensions["baton"].settings.embedded:
        pytest.fail("REDIS_URL must point at Redis for this test (./dev test sets it)")
    assert enqueue_once(connection, jobs_for_tests.app_name, job_id="cli-app")
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert job_status(connection, "cli-app") == JobStatus.FINISHED
    from rq.job import Job

    assert Job.fetch("cli-app", connection=connection).return_value() == app.name


def test_flask_worker_refuses_embedded_mode(app_factory):
    app = app_factory(redis_url=None)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0
    assert "needs REDIS_URL" in result.output
