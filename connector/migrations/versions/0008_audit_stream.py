"""webhook audit: rows batched through Redis carry their stream entry id; newest-first index

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 11:00:00.000000

An ignored delivery's audit row is appended to a Redis stream and copied here in batches
(connector/delivery_audit.py); the entry id makes that copy idempotent, so two flushers, or a
flush that died before trimming the stream, never write a row twice. The console lists
deliveries by arrival, not by insertion order, hence the (tenant, received_at) index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_id", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint("uq_webhook_deliveries_stream_id", ["stream_id"])
    op.create_index(
        "ix_webhook_deliveries_tenant_received",
        "webhook_deliveries",
        ["tenant_id", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_tenant_received", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhook_deliveries_stream_id", type_="unique")
        batch_op.drop_column("stream_id")
