"""One error shape for the whole HTTP surface: {"error": {"code", "message"}} and a status."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask_smorest import Api
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import HTTPException


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "machine-readable, e.g. unknown_tenant"}
    )
    message = fields.String(required=True, metadata={"description": "for people"})


class ErrorSchema(Schema):
    """Every error: {"error": {"code", "message"}}, with context beside it where useful
    (e.g. `claimed_by` on a lost claim, `fields` on a 422)."""

    class Meta:
        unknown = INCLUDE

    error = fields.Nested(ErrorDetailSchema, required=True)


class BatonApi(Api):
    """flask-smorest, documenting Baton's error shape instead of its own."""

    ERROR_SCHEMA = ErrorSchema


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra: Any):
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    return response


def _validation_message(messages: Any) -> tuple[str, Any]:
    """Flatten webargs/marshmallow messages into 'field: problem' for people, keep the detail."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(f"{prefix}: {' '.join(value)}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk(f"{prefix}[{i}]", sub)
        else:
            parts.append(f"{prefix}: {value}")

    # webargs nests by location ("json", "query"); the location is noise for people.
    flat = messages
    if isinstance(messages, dict) and len(messages) == 1:
        flat = next(iter(messages.values()))
    walk("", flat)
    return "; ".join(parts) or "invalid request", flat


def reject_nul_characters() -> None:
    """PostgreSQL text cannot hold NUL: refuse it at the door (422), not with a 500 later."""
    from flask import request

    if request.path.startswith("/api/") and request.content_length:
        body = request.get_data(cache=True)
        if b"\\u0000" in body or b"\x00" in body:
            raise APIError(422, "invalid_request", "values must not contain NUL characters")


def register_error_handlers(app: Flask) -> None:
    app.before_request(reject_nul_characters)

    @app.errorhandler(APIError)
    def _api_error(exc: APIError):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        if status == 422 and "messages" in data:
            summary, fields = _validation_message(data["messages"])
            return error_response(422, "invalid_request", summary, fields=fields)
        code = (exc.name or "error").lower().replace(" ", "_")
        detail = data.get("message") if isinstance(data, dict) else None
        return error_response(status, code, str(detail or exc.description or exc.name))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "Baton hit an unexpected error")
