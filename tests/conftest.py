"""Shared fixtures: a clean database and Redis per test, the app, a live server, the fakes.

DATABASE_URL and REDIS_URL select real PostgreSQL and Redis (CI sets both, see `./dev test`);
without them the tests run on SQLite and the in-process Redis stand-in (embedded mode).
A service that is configured but unreachable fails the run: nothing is skipped.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from connector import db
from connector.config import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = Fernet.generate_key().decode()


# --- databases -----------------------------------------------------------------------------


def _postgres_test_database(base_url: str) -> Iterator[str]:
    """A database of our own per test run, so parallel runs and old tables never interfere."""
    name = f"baton_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        base_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.session.remove()
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    if base and base.startswith("postgres"):
        yield from _postgres_test_database(base)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'baton.db'}"


@pytest.fixture(scope="session")
def migrated_engine(database_url: str):
    from connector.migrate import upgrade

    engine = db.make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None


# --- the app -------------------------------------------------------------------------------


def make_settings(
    database_url: str, redis_url: str | None, instance: Path, /, **overrides: Any
) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "CONNECTOR_SECRET_KEY": SECRET_KEY,
        "CONNECTOR_ADMIN_TOKEN": ADMIN_TOKEN,
        "CONNECTOR_INSTANCE_PATH": str(instance),
        "CONNECTOR_ALLOW_PRIVATE_URLS": "true",
        "CONNECTOR_AI_DEADLINE_SECONDS": "5",
        "CONNECTOR_SANDBOX": "false",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return load_settings(env, **overrides)


def _clean(engine, connection) -> None:
    tables = [t for t in reversed(db.Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
    connection.flushdb()


@pytest.fixture
def app_factory(migrated_engine, database_url, redis_url, tmp_path):
    """Build an app with overrides; the database and Redis are emptied first."""
    from connector.app import create_app

    created: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        settings = make_settings(database_url, redis_url, tmp_path / "instance", **overrides)
        app = create_app(settings, start_worker=False)
        if not created:
            _clean(migrated_engine, app.extensions["baton"].redis)
        created.append(app)
        return app

    yield factory
    db.session.remove()
    for app in created:
        app.extensions["baton"].engine.dispose()


@pytest.fixture
def app(app_factory) -> Flask:
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class LiveServer:
    def __init__(self, app: Flask):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def live_server_factory():
    servers: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        server = LiveServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- the fakes -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic, monkeypatch) -> FakeAnthropic:
    """The real SDK pointed at the fake by ANTHROPIC_BASE_URL, as in production."""
    fake_anthropic_server.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    return fake_anthropic_server


@pytest.fixture
def no_anthropic_key(monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
