"""create_app(): settings, database, queue, blueprints, CLI.

Embedded mode runs it all in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, request
from sqlalchemy import Engine
from werkzeug.routing import IntegerConverter

from connector import db
from connector.config import MAX_BODY_BYTES, Settings, load_settings, new_token
from connector.errors import BatonApi, register_error_handlers
from connector.logs import configure_logging
from connector.security import SecretBox
from connector.telemetry import Telemetry

log = logging.getLogger(__name__)


class DatabaseIdConverter(IntegerConverter):
    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


@dataclass
class Runtime:
    """What requests and jobs share: app.extensions["baton"]."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    secret_box: SecretBox
    metrics: Telemetry
    session_member_loader: Callable[[], Any] | None = None
    worker: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def create_app(settings: Settings | None = None, *, start_worker: bool | None = None) -> Flask:
    configure_logging()
    settings = settings or load_settings()
    if settings.embedded and not settings.admin_token:
        settings = settings.with_overrides(admin_token=_embedded_admin_token(settings))

    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_keys[0],
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        API_TITLE="Baton",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )

    engine = db.make_engine(settings.database_url)
    db.bind(engine)
    if settings.embedded and settings.database_url.startswith("sqlite"):
        from connector.migrate import upgrade

        upgrade(engine)  # one command must be enough for the demo; production runs `release`

    from connector.queue import connect

    runtime = Runtime(
        settings=settings,
        engine=engine,
        redis=connect(settings.redis_url),
        secret_box=SecretBox(settings.secret_keys),
        metrics=Telemetry(),
    )
    app.extensions["baton"] = runtime

    from connector import limits

    # Ids are 32-bit in the database: a larger one in a URL is simply not found (404).
    app.url_map.converters["int"] = DatabaseIdConverter
    limits.init_app(app)
    from connector import sessions

    sessions.init_app(app)
    _register_blueprints(app)
    register_error_handlers(app)  # after flask-smorest's Api, whose own handler it replaces

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        db.session.remove()

    @app.after_request
    def _count(response):
        runtime.metrics.requests.labels(request.endpoint or "unknown", response.status_code).inc()
        return response

    from connector.cli import register_cli

    register_cli(app)

    if settings.embedded and settings.sandbox:
        from connector.embedded import mount_sandbox

        mount_sandbox(app)

    if start_worker is None:
        start_worker = settings.embedded and settings.run_embedded_worker
    if start_worker:
        from connector.embedded import start_worker as _start

        _start(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from connector.api import admin
    from connector.api import escalations as escalations_api
    from connector.health import bp as health_bp
    from connector.limits import limiter, member_key
    from connector.webhooks import bp as webhooks_bp

    settings = app.extensions["baton"].settings
    api = BatonApi(app)
    from connector import stream
    from connector.api import analytics as analytics_api
    from connector.api import console as console_api
    from connector.api import notifications as notifications_api
    from connector.api import sessions as sessions_api
    from connector.api import variants as variants_api

    app.register_blueprint(sessions_api.bp)  # the HTML page a sign-in link opens
    for blueprint in (
        admin.blp,
        escalations_api.blp,
        analytics_api.blp,
        sessions_api.blp,
        stream.blp,
        variants_api.blp,
        notifications_api.blp,
        console_api.blp,
    ):
        limiter.limit(settings.api_rate_limit, key_func=member_key)(blueprint)
        api.register_blueprint(blueprint)
    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
    from connector.panel.console import bp as console_page_bp
    from connector.panel.report import bp as report_bp
    from connector.panel.views import bp as panel_bp

    app.register_blueprint(panel_bp)  # the panel's pages: /panel/, handoff, escalate

    app.register_blueprint(report_bp)
    app.register_blueprint(console_page_bp)  # /panel/admin
    app.extensions["baton"].extras["api"] = api


def _embedded_admin_token(settings: Settings) -> str:
    """Embedded mode generates an admin token once and keeps it beside the database."""
    path = settings.instance_path / "admin.token"
    if path.exists():
        return path.read_text().strip()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    token = new_token()
    path.write_text(token)
    path.chmod(0o600)
    return token
