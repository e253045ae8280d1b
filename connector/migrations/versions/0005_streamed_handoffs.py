"""streamed handoffs: what was tried, open questions, partial fields, new notes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        # Handoffs saved before these columns existed render without them: empty, not null.
        batch_op.add_column(sa.Column("tried", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("open_questions", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("partial", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("new_notes", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_column("new_notes")
        batch_op.drop_column("partial")
        batch_op.drop_column("open_questions")
        batch_op.drop_column("tried")
