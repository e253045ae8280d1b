"""Structured logs: one line per escalation step, keyed by the escalation id.

The same fields either way: JSON lines for a log collector, or readable lines on a terminal
(CONNECTOR_LOG_FORMAT=json | text; by default text when stderr is a terminal).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connector.config import ConfigError

STEP_LOGGER = logging.getLogger("baton.steps")
# Access logs carry URLs; a sign-in link's token must never reach a log line.
URL_SECRETS = re.compile(r"(?i)\b(token|key|secret|signature|memberhash)=[^&\s\"']+")
LOG_FORMATS = ("text", "json")


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": URL_SECRETS.sub(r"\1=[redacted]", record.getMessage()),
    }
    fields = getattr(record, "fields", None)
    if fields:
        data.update(fields)
    if record.exc_info:
        data["exc"] = formatter.formatException(record.exc_info)
    return data


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), default=str)


class TextFormatter(logging.Formatter):
    """`ts level logger: msg key=value ...`, with a traceback on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        data = _fields(record, self)
        exc = data.pop("exc", None)
        head = f"{data.pop('ts')} {data.pop('level'):<7} {data.pop('logger')}: {data.pop('msg')}"
        line = " ".join([head, *(f"{key}={_text(value)}" for key, value in data.items())])
        return f"{line}\n{exc}" if exc else line


def _text(value: Any) -> str:
    if isinstance(value, str) and value and not re.search(r"[\s\"'=]", value):
        return value
    return json.dumps(value, default=str)


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    chosen = (env.get("CONNECTOR_LOG_FORMAT") or "").strip().lower()
    if not chosen:
        return "text" if sys.stderr.isatty() else "json"
    if chosen not in LOG_FORMATS:
        raise ConfigError(f"CONNECTOR_LOG_FORMAT must be text or json, not {chosen!r}")
    return chosen


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_baton", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format() == "text" else JSONFormatter())
    handler._baton = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "urllib3", "httpx2", "httpcore2", "rq.worker", "rq.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def step(escalation_id: int | None, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one pipeline step. Callers pass ids, states, counts and reasons, never secrets."""
    STEP_LOGGER.log(
        level, name, extra={"fields": {"escalation_id": escalation_id, "step": name, **fields}}
    )
