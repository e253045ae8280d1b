"""Run Alembic from code (embedded start-up, tests, `flask db-upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


# The full-text search index of migration 0007 is not declared in the models (a PostgreSQL
# generated tsvector column, SQLite's FTS5 table and its shadow tables): comparisons skip it.
SEARCH_INDEX = ("escalation_search", "search_vector", "ix_escalations_search_vector")


def declared_in_models(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """Alembic's include_object: False for the search index's tables, column and index."""
    return not (name or "").startswith(SEARCH_INDEX)
