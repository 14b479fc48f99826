"""slugs remember what they were built from

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slugs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_slugs_source_key"), ["source_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slugs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slugs_source_key"))
        batch_op.drop_column("source_key")
