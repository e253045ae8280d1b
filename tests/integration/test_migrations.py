"""The same migrations run on SQLite and PostgreSQL, up and down, matching the models."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from connector import db, models
from connector.migrate import declared_in_models, downgrade, upgrade


def _check(engine) -> None:
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    for table in db.Base.metadata.tables:
        assert table in tables
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": declared_in_models})
        diff = compare_metadata(context, db.Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)


def test_migrations_on_sqlite(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    _check(engine)
    engine.dispose()


def test_migrations_on_postgresql():
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        pytest.fail("DATABASE_URL must point at PostgreSQL for this test (./dev test sets it)")
    name = f"baton_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        _check(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def test_a_handoff_saved_before_0004_still_renders(tmp_path):
    """Older handoffs have no tried / open questions: the API and the note show them without."""
    from sqlalchemy.orm import Session

    from connector.api.escalations import handoff_view
    from connector.handoff_text import render_note

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0002")
    now = "2026-11-20 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, vendor, escalation_statuses, language, "
                "verdict_threshold_hours, created_at) "
                "VALUES (1, 'acme', 'Acme', 'connectwise', '[]', 'en', 1.0, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO escalations (id, tenant_id, ticket_id, ticket_number, ticket_title, "
                "ticket_url, escalated_by, delivery_key, source, received_at) "
                "VALUES (7, 1, '104512', '104512', 'Outlook', '', 'kpatel', 'k', 'webhook', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO handoffs (escalation_id, state, source, summary_prose, what_we_know, "
                "likely_cause, suggested_steps, confidence, started_at, generated_at) VALUES "
                "(7, 'ready', 'ai', 'Prompts.', '[\"OWA works\"]', 'Disabled device', "
                "'[\"Re-enable it\"]', 'high', :now, :now)"
            ),
            {"now": now},
        )
    upgrade(engine)
    with Session(engine) as orm:
        escalation = orm.get(models.Escalation, 7)
        view = handoff_view(escalation)
        assert view["tried"] == [] and view["open_questions"] == [] and view["new_notes"] == 0
        assert view["state"] == "ready" and not view["writing"] and view["unfinished"] is None
        assert view["likely_cause"] == "Disabled device"
        note = render_note(escalation, escalation.handoff)
        assert note.startswith("Prompts.\n\nWhat we know:\n- OWA works")
        assert "What was tried" not in note and "Open questions" not in note
    engine.dispose()
