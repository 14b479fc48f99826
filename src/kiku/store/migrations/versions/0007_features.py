"""labs features on apps, snapshotted by releases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("apps", "releases"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("features", sa.JSON(), nullable=False, server_default="[]")
            )


def downgrade() -> None:
    for table in ("apps", "releases"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("features")
