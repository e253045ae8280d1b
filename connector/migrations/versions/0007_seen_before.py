"""seen before: what fixed an escalation, and a full-text index to find earlier ones

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00.000000

PostgreSQL: a generated tsvector column (title weighted A, the rest B) with a GIN index.
SQLite (embedded mode): an external-content FTS5 table kept in step by triggers. A later
migration that rebuilds `escalations` with batch mode on SQLite must recreate the triggers.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FTS_COLUMNS = "ticket_title, search_text"
SQLITE_TRIGGERS = (
    """CREATE TRIGGER escalations_search_insert AFTER INSERT ON escalations BEGIN
         INSERT INTO escalation_search(rowid, ticket_title, search_text)
         VALUES (new.id, new.ticket_title, new.search_text);
       END""",
    """CREATE TRIGGER escalations_search_delete AFTER DELETE ON escalations BEGIN
         INSERT INTO escalation_search(escalation_search, rowid, ticket_title, search_text)
         VALUES ('delete', old.id, old.ticket_title, old.search_text);
       END""",
    """CREATE TRIGGER escalations_search_update AFTER UPDATE OF ticket_title, search_text
       ON escalations BEGIN
         INSERT INTO escalation_search(escalation_search, rowid, ticket_title, search_text)
         VALUES ('delete', old.id, old.ticket_title, old.search_text);
         INSERT INTO escalation_search(rowid, ticket_title, search_text)
         VALUES (new.id, new.ticket_title, new.search_text);
       END""",
)


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("company", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("configuration_names", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_by", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("related", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_index("ix_escalations_tenant_company", ["tenant_id", "company"])
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("seen_before", sa.JSON(), nullable=False, server_default="[]")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE escalations ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(ticket_title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(search_text, '')), 'B')) STORED"
        )
        op.execute(
            "CREATE INDEX ix_escalations_search_vector ON escalations USING gin (search_vector)"
        )
    else:
        op.execute(
            f"CREATE VIRTUAL TABLE escalation_search USING fts5({FTS_COLUMNS}, "
            "content='escalations', content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute("INSERT INTO escalation_search(escalation_search) VALUES ('rebuild')")
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_escalations_search_vector")
        op.execute("ALTER TABLE escalations DROP COLUMN IF EXISTS search_vector")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS escalations_search_{name}")
        op.execute("DROP TABLE IF EXISTS escalation_search")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_column("seen_before")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_tenant_company")
        for column in ("related", "resolution_source", "resolved_at", "resolved_by",
                       "resolution", "search_text", "configuration_names", "company"):  # fmt: skip
            batch_op.drop_column(column)
