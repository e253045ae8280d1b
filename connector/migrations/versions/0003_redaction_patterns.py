"""tenant redaction patterns: never-send terms and patterns, encrypted

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redaction_patterns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_encrypted", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("redaction_patterns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_redaction_patterns_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("redaction_patterns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redaction_patterns_tenant_id"))
    op.drop_table("redaction_patterns")
