"""members: a session key that ends their panel sessions, and their state in the PSA

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        # "" for the members there are: their cookies carry no key, so they stay signed in.
        batch_op.add_column(
            sa.Column("session_key", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("psa_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("psa_checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("psa_checked_at")
        batch_op.drop_column("psa_state")
        batch_op.drop_column("session_key")
