"""pathways, versions, folders, chats

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "pathway_chats",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("pathway_id", sa.String(length=36), nullable=True),
        sa.Column("pathway_version", sa.Integer(), nullable=True),
        sa.Column("task", sa.Text(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pathway_chats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pathway_chats_org_id"), ["org_id"], unique=False)

    op.create_table(
        "pathway_folders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_folder_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pathway_folders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pathway_folders_org_id"), ["org_id"], unique=False)

    op.create_table(
        "pathways",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("folder_id", sa.String(length=36), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("production_version", sa.Integer(), nullable=True),
        sa.Column("staging_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pathways", schema=None) as batch_op:
        batch_op.create_index("ix_pathways_org", ["org_id", "created_at"], unique=False)

    op.create_table(
        "pathway_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pathway_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pathway_id"], ["pathways.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pathway_id", "version_number"),
    )


def downgrade() -> None:

    op.drop_table("pathway_versions")
    with op.batch_alter_table("pathways", schema=None) as batch_op:
        batch_op.drop_index("ix_pathways_org")

    op.drop_table("pathways")
    with op.batch_alter_table("pathway_folders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathway_folders_org_id"))

    op.drop_table("pathway_folders")
    with op.batch_alter_table("pathway_chats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathway_chats_org_id"))

    op.drop_table("pathway_chats")
