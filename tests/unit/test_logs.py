"""Log lines: JSON for a collector, readable text on a terminal, the same fields either way."""

from __future__ import annotations

import json
import logging

import pytest

from connector.config import ConfigError
from connector.logs import JSONFormatter, TextFormatter, log_format, step


def logged(emit) -> logging.LogRecord:
    """The one record `emit` logs, as a handler receives it."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("baton.steps")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        emit()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [record] = records
    return record


def a_step() -> None:
    step(7, "context_built", tokens=812, redactions={"password": 1}, reason="PSA said no")


def test_text_and_json_carry_the_same_fields():
    record = logged(a_step)
    as_json = json.loads(JSONFormatter().format(record))
    as_text = TextFormatter().format(record)
    assert set(as_json) == {
        "ts", "level", "logger", "msg", "escalation_id", "step", "tokens", "redactions", "reason"
    }  # fmt: skip
    assert as_text == (
        f"{as_json['ts']} info    baton.steps: context_built escalation_id=7 step=context_built "
        'tokens=812 redactions={"password": 1} reason="PSA said no"'
    )


def test_a_traceback_follows_the_text_line():
    def fail() -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("baton.steps").exception("sweep failed")

    first, *rest = TextFormatter().format(logged(fail)).splitlines()
    assert first.endswith("error   baton.steps: sweep failed")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "RuntimeError: boom"


def test_url_secrets_are_redacted_in_both_formats():
    def access() -> None:
        logging.getLogger("baton.steps").info("GET /panel/sign-in?token=abc123&tenant=acme")

    record = logged(access)
    for formatter in (JSONFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert "abc123" not in line and "token=[redacted]&tenant=acme" in line


def test_the_format_is_a_setting_and_defaults_by_terminal(monkeypatch):
    assert log_format({"CONNECTOR_LOG_FORMAT": "JSON"}) == "json"
    assert log_format({"CONNECTOR_LOG_FORMAT": "text"}) == "text"
    with pytest.raises(ConfigError, match="CONNECTOR_LOG_FORMAT"):
        log_format({"CONNECTOR_LOG_FORMAT": "xml"})
    for terminal, expected in ((True, "text"), (False, "json")):
        monkeypatch.setattr("sys.stderr.isatty", lambda terminal=terminal: terminal)
        assert log_format({}) == expected
