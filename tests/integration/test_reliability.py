"""Faults: lost jobs, killed workers and a failing model. Nothing recorded is lost, every handoff
reaches a terminal state, the ticket gets exactly one note. (A failing PSA, for every vendor:
test_pipeline.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from rq import Queue
from sqlalchemy import select

from connector.db import session
from connector.models import AICall, Escalation, Handoff
from connector.queue import HANDOFF, HANDOFFS, known_queue_names
from tests.integration.pipeline import accepted, baton_notes, escalation_ids, run_worker, wait_for


def sweep(app) -> dict:
    from connector.sweeper import sweep as run_sweep

    with app.app_context():
        return run_sweep().as_dict()


def handoff_states(app) -> dict[int, str]:
    with app.app_context():
        rows = session.execute(select(Handoff.escalation_id, Handoff.state)).all()
        session.remove()
    return dict(rows)


def test_redis_flushed_between_record_and_work_is_recovered_by_the_sweep(
    baton, sandbox, fake_anthropic
):
    app, _live, _token = baton
    store, _server = sandbox
    for ticket in (104512, 105033, 105390):
        store.escalate(ticket, member="kpatel")
    wait_for(lambda: len(accepted(store)) == 3, what="three callbacks")
    app.extensions["baton"].redis.flushdb()  # a Redis restart: every queued job is gone
    run_worker(app)
    assert set(handoff_states(app).values()) == {"pending"}

    report = sweep(app)
    assert sorted(report["requeued"]) == sorted(escalation_ids(app))
    # Back on the tenant's own queue, which the flush also made the workers forget.
    with app.app_context():
        tenant_ids = set(session.scalars(select(Escalation.tenant_id)).all())
        session.remove()
    [tenant_id] = tenant_ids
    connection = app.extensions["baton"].redis
    assert known_queue_names(connection, {HANDOFFS}) == [HANDOFFS, f"{HANDOFFS}:{tenant_id}"]
    queued = Queue(f"{HANDOFFS}:{tenant_id}", connection=connection).job_ids
    assert sorted(queued) == sorted(HANDOFF.job_id(i) for i in escalation_ids(app))
    run_worker(app)
    assert set(handoff_states(app).values()) == {"ready"}
    for ticket in (104512, 105033, 105390):
        assert len(baton_notes(store, ticket)) == 1
    assert sweep(app) == {
        "requeued": [],
        "finished_with_fallback": [],
        "write_backs_requeued": [],
        "notifications_requeued": [],
        "audit_rows_flushed": 0,  # the worker copied every row after its jobs
    }


def test_sweep_finishes_a_handoff_stuck_past_the_deadline(baton, sandbox, fake_anthropic):
    app, _live, _token = baton
    store, _server = sandbox
    store.escalate(106102, member="aokafor")
    wait_for(lambda: accepted(store), what="callback")
    [escalation_id] = escalation_ids(app)
    with app.app_context():
        handoff = session.scalar(select(Handoff).where(Handoff.escalation_id == escalation_id))
        escalation = session.get(Escalation, escalation_id)
        long_ago = handoff.started_at.replace(year=2020)
        handoff.started_at = escalation.received_at = long_ago
        session.commit()
        session.remove()
    report = sweep(app)
    assert report["finished_with_fallback"] == [escalation_id]
    assert handoff_states(app) == {escalation_id: "fallback"}
    run_worker(app)  # the original job finds the handoff terminal and only writes the note
    assert handoff_states(app) == {escalation_id: "fallback"}
    assert len(baton_notes(store, 106102)) == 1
    assert fake_anthropic.message_requests() == []


@pytest.mark.parametrize(
    "mode",
    ["429", "529", "500", "hang", "bad_schema", "refusal", "max_tokens", "thinking"],
)
def test_model_faults_always_end_in_a_terminal_handoff_within_the_deadline(
    baton, sandbox, fake_anthropic, mode
):
    app, _live, _token = baton
    store, _server = sandbox
    fake_anthropic.set_mode(mode, retry_after="0.2")
    store.escalate(107255, member="kpatel")
    wait_for(lambda: accepted(store), what="callback")
    deadline = app.extensions["baton"].settings.ai_deadline_seconds
    started = time.monotonic()
    run_worker(app)
    elapsed = time.monotonic() - started
    assert elapsed < deadline + 2, f"{mode}: {elapsed:.1f}s"
    states = set(handoff_states(app).values())
    assert states == ({"ready"} if mode == "thinking" else {"fallback"})
    assert len(baton_notes(store, 107255)) == 1
    with app.app_context():
        calls = session.scalars(select(AICall)).all()
        assert len(calls) == 1 and calls[0].purpose == "summary"
        assert (calls[0].outcome == "ok") == (mode == "thinking")
        session.remove()


SHOWN = 260  # characters of the fake's answer: "tried" and "likely_cause" are complete


@pytest.mark.parametrize(
    ("faults", "state", "outcome", "requests_made", "unfinished"),
    [
        # Stalls: before the first byte, after the headers, in the middle of the answer; and
        # an answer that trickles on, never silent for long, past the deadline.
        ([("hang", {})], "fallback", "timeout", 1, None),
        ([("answer", {"pace": 2})], "fallback", "timeout", 1, None),
        ([("stall", {"after": 0})], "fallback", "timeout", 1, None),
        ([("stall", {"after": SHOWN})], "fallback", "timeout", 1, {"tried", "likely_cause"}),
        # Mid-stream errors: retried while nothing was shown, final once something was.
        ([("overloaded_mid_stream", {"after": 10}), "answer"], "ready", "ok", 2, None),
        ([("dropped", {"after": 10}), "answer"], "ready", "ok", 2, None),
        (
            [("overloaded_mid_stream", {"after": SHOWN})],
            "fallback",
            "overloaded",
            1,
            {"tried", "likely_cause"},
        ),
        ([("dropped", {"after": SHOWN})], "fallback", "dropped", 1, {"tried", "likely_cause"}),
        # The body ends properly, but before the answer does.
        (
            [("truncated", {"after": SHOWN})],
            "fallback",
            "interrupted",
            1,
            {"tried", "likely_cause"},
        ),
    ],
)
def test_stream_faults_end_in_a_terminal_handoff_within_the_deadline(
    baton, sandbox, fake_anthropic, faults, state, outcome, requests_made, unfinished
):
    app, live, token = baton
    store, _server = sandbox
    fake_anthropic.queue_modes(faults)
    store.escalate(107255, member="kpatel")
    wait_for(lambda: accepted(store), what="callback")
    deadline = app.extensions["baton"].settings.ai_deadline_seconds
    started = time.monotonic()
    run_worker(app)
    elapsed = time.monotonic() - started
    assert elapsed < deadline + 2, f"{faults}: {elapsed:.1f}s"
    assert len(fake_anthropic.message_requests()) == requests_made
    [escalation_id] = escalation_ids(app)
    handoff = requests.get(
        f"{live.url}/api/v1/escalations/{escalation_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["handoff"]
    assert handoff["state"] == state and not handoff["writing"]
    # What was shown stays on screen, marked unfinished; the note is the fallback alone.
    assert (set(handoff["unfinished"]) if handoff["unfinished"] else None) == unfinished
    [note] = baton_notes(store, 107255)
    assert ("Example likely cause" in note.text) == (state == "ready")
    with app.app_context():
        [call] = session.scalars(select(AICall)).all()
        assert call.purpose == "summary" and call.outcome == outcome
        # Billed is billed: every attempt whose stream began counts its prompt, failed or not.
        began = [] if faults[0][0] == "hang" else fake_anthropic.message_requests()
        assert call.input_tokens == sum(len(r.raw) // 4 for r in began)
        session.remove()


def _start_worker_process(app, env_extra: dict[str, str]) -> subprocess.Popen:
    settings = app.extensions["baton"].settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "CONNECTOR_SECRET_KEY": ",".join(settings.secret_keys),
        "CONNECTOR_ADMIN_TOKEN": settings.admin_token or "",
        "CONNECTOR_ALLOW_PRIVATE_URLS": "true",
        "CONNECTOR_AI_DEADLINE_SECONDS": str(settings.ai_deadline_seconds),
        "CONNECTOR_INSTANCE_PATH": str(settings.instance_path),
        **env_extra,
    }
    return subprocess.Popen(  # the Procfile's worker
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a group of its own: its scheduler process goes with it
    )


def test_worker_killed_mid_job_still_reaches_a_terminal_handoff(baton, sandbox, fake_anthropic):
    app, _live, _token = baton
    settings = app.extensions["baton"].settings
    if not settings.redis_url:
        pytest.fail("this test needs real Redis and worker processes: REDIS_URL (./dev test)")
    store, _server = sandbox
    fake_anthropic.set_mode("slow", latency=3)
    extra = {
        "REDIS_URL": settings.redis_url,
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "ANTHROPIC_API_KEY": "test-key",
    }
    worker = _start_worker_process(app, extra)
    try:
        store.escalate(109120, member="jreyes")
        wait_for(
            lambda: len(fake_anthropic.message_requests()) == 1,
            timeout=20,
            what="the worker to call the model",
        )
        os.killpg(worker.pid, signal.SIGKILL)  # mid-job: the model is still answering
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    [escalation_id] = escalation_ids(app)
    assert handoff_states(app) == {escalation_id: "pending"}
    fake_anthropic.set_mode("answer")
    runtime = app.extensions["baton"]
    runtime.settings = runtime.settings.with_overrides(sweep_grace_seconds=0.5)
    time.sleep(settings.ai_deadline_seconds + 1)
    assert sweep(app)["finished_with_fallback"] == [escalation_id]
    replacement = _start_worker_process(app, extra)
    try:
        assert handoff_states(app) == {escalation_id: "fallback"}
        wait_for(lambda: len(baton_notes(store, 109120)) == 1, timeout=20, what="the note")
    finally:
        os.killpg(replacement.pid, signal.SIGTERM)
        replacement.wait(timeout=10)
    assert len(baton_notes(store, 109120)) == 1
