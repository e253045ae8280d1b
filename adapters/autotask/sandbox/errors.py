"""Refusing a request the way Autotask does: {"errors": [...]}, mostly with HTTP 500."""

from __future__ import annotations

from typing import Any

from flask import request


class ATError(Exception):
    """An error answered in Autotask's body: {"errors": ["..."]}."""

    def __init__(self, status: int, *messages: str):
        super().__init__("; ".join(messages))
        self.status, self.messages = status, list(messages)


def body_object() -> dict[str, Any]:
    """The request's JSON object with lower-case keys (Autotask reads them case-blind)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ATError(500, "The request body must be a JSON object.")
    return {str(k).lower(): v for k, v in body.items()}
