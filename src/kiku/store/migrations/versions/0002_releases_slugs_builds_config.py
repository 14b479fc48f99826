"""releases slugs builds config

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slugs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("process_types", sa.JSON(), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("commit_description", sa.String(length=500), nullable=True),
        sa.Column("stack", sa.String(length=30), nullable=False),
        sa.Column("buildpack_provided_description", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("slugs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slugs_app_id"), ["app_id"], unique=False)

    op.create_table(
        "builds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source_version", sa.String(length=64), nullable=True),
        sa.Column("buildpacks", sa.JSON(), nullable=False),
        sa.Column("stack", sa.String(length=30), nullable=False),
        sa.Column("slug_id", sa.String(length=36), nullable=True),
        sa.Column("release_id", sa.String(length=36), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["slug_id"], ["slugs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_builds_app_id"), ["app_id"], unique=False)

    op.create_table(
        "releases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("slug_id", sa.String(length=36), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["slug_id"], ["slugs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "version"),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_releases_app_id"), ["app_id"], unique=False)

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("buildpacks", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("release_seq", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.alter_column(
            "repo_size", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )
        batch_op.alter_column(
            "slug_size", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )

    # Apps made before releases existed get their v1, as every app now has from creation.
    connection = op.get_bind()
    apps = connection.execute(sa.text("SELECT id, owner_id, created_at FROM apps")).fetchall()
    for app_id, owner_id, created_at in apps:
        connection.execute(
            sa.text(
                "INSERT INTO releases (id, app_id, version, description, status, config,"
                " user_id, created_at, updated_at) VALUES (:id, :app, 1, 'Initial release',"
                " 'succeeded', '{}', :user, :at, :at)"
            ),
            {"id": str(uuid.uuid4()), "app": app_id, "user": owner_id, "at": created_at},
        )
        connection.execute(
            sa.text("UPDATE apps SET release_seq = 1 WHERE id = :id"), {"id": app_id}
        )


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.alter_column(
            "slug_size", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
        batch_op.alter_column(
            "repo_size", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
        batch_op.drop_column("release_seq")
        batch_op.drop_column("buildpacks")
        batch_op.drop_column("config")

    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_app_id"))

    op.drop_table("releases")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_builds_app_id"))

    op.drop_table("builds")
    with op.batch_alter_table("slugs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slugs_app_id"))

    op.drop_table("slugs")
