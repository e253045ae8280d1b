"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from connector.db import session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    runtime = current_app.extensions["baton"]
    problems: dict[str, str] = {}
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        session.rollback()
        problems["database"] = type(exc).__name__
    try:
        runtime.redis.ping()
    except Exception as exc:
        problems["redis"] = type(exc).__name__
    if problems:
        names = " and ".join(sorted(problems))
        body = {
            "status": "unavailable",
            "error": {"code": "not_ready", "message": f"{names} unreachable"},
            "checks": {k: f"unreachable ({v})" for k, v in problems.items()},
        }
        return jsonify(body), 503
    mode = "embedded" if runtime.settings.embedded else "production"
    return jsonify({"status": "ready", "mode": mode, "checks": {"database": "ok", "redis": "ok"}})


@bp.get("/metrics")
def metrics():
    return Response(
        generate_latest(current_app.extensions["baton"].metrics.registry),
        mimetype=CONTENT_TYPE_LATEST,
    )
