"""Structured logs: one JSON line per escalation step, keyed by the escalation id."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

STEP_LOGGER = logging.getLogger("baton.steps")
# Access logs carry URLs; a sign-in link's token must never reach a log line.
URL_SECRETS = re.compile(r"(?i)\b(token|key|secret|signature|memberhash)=[^&\s\"']+")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_baton", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler._baton = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "urllib3", "httpx2", "httpcore2", "rq.worker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def step(escalation_id: int | None, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one pipeline step. Callers pass ids, states, counts and reasons, never secrets."""
    STEP_LOGGER.log(
        level, name, extra={"fields": {"escalation_id": escalation_id, "step": name, **fields}}
    )
