"""The organisation's model limits, held in Redis across workers (issue 19): an attempt waits
for room inside the deadline, and one that would wait past it is never sent."""

from __future__ import annotations

import time

import pytest

from connector import ai
from connector.config import ConfigError, load_settings


def create(client, timeout):
    return client.messages.create(
        model="claude-haiku-5-5",
        max_tokens=50,
        messages=[{"role": "user", "content": "hello"}],
        timeout=timeout,
    )


def call(deadline: float = 2.0, tokens: int = 10) -> ai.CallResult:
    return ai.call_model(
        create, deadline_seconds=deadline, model="claude-haiku-5-5", input_tokens=tokens
    )


def test_requests_past_the_per_minute_limit_are_held_back_not_sent(app_factory, fake_anthropic):
    # Two apps stand for two worker processes: only Redis is shared between them.
    one = app_factory(model_limits={"claude-haiku-5-5": (2, None)})
    two = app_factory(model_limits={"claude-haiku-5-5": (2, None)})
    with one.app_context():
        assert call().ok
    with two.app_context():
        assert call().ok
        started = time.monotonic()
        held = call(deadline=2.0)
    assert time.monotonic() - started < 2.0  # given up before the deadline, not at a minute
    assert not held.ok and held.outcome == "rate_limited" and "held back" in (held.error or "")
    assert len(fake_anthropic.message_requests()) == 2


def test_input_tokens_count_against_the_token_limit(app_factory, fake_anthropic):
    app = app_factory(model_limits={"claude-haiku-5-5": (None, 1000)})
    with app.app_context():
        assert call(tokens=600).ok
        assert call(tokens=600).outcome == "rate_limited"
        assert call(tokens=300).ok  # what is left of the minute's tokens still serves
    assert len(fake_anthropic.message_requests()) == 2


def test_other_models_are_not_held(app_factory, fake_anthropic):
    app = app_factory(model_limits={"claude-sonnet-5-5": (1, None)})
    with app.app_context():
        assert all(call().ok for _ in range(3))


def test_limits_are_configured_per_model(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "CONNECTOR_INSTANCE_PATH": str(tmp_path),
        "CONNECTOR_SUMMARY_RPM": "50",
        "CONNECTOR_SUMMARY_TPM": "30000",
        "CONNECTOR_TONE_RPM": "100",
    }
    settings = load_settings(env)
    assert settings.model_limits == {
        "claude-sonnet-5-5": (50, 30000),
        "claude-haiku-5-5": (100, None),
    }
    with pytest.raises(ConfigError, match="CONNECTOR_SUMMARY_RPM"):
        load_settings({**env, "CONNECTOR_SUMMARY_RPM": "lots"})
