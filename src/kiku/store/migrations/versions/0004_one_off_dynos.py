"""one-off dynos

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dynos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("one_off", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("attach", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("env", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dynos", schema=None) as batch_op:
        batch_op.drop_column("exit_code")
        batch_op.drop_column("env")
        batch_op.drop_column("attach")
        batch_op.drop_column("one_off")
