"""formation and dynos

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dynos",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=140), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("size", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=True),
        sa.Column("release_version", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=60), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("restart_requested", sa.Boolean(), nullable=False),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "name"),
    )
    with op.batch_alter_table("dynos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dynos_app_id"), ["app_id"], unique=False)

    op.create_table(
        "formations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("size", sa.String(length=30), nullable=False),
        sa.Column("restart_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "type"),
    )
    with op.batch_alter_table("formations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_formations_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("formations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_formations_app_id"))

    op.drop_table("formations")
    with op.batch_alter_table("dynos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dynos_app_id"))

    op.drop_table("dynos")
