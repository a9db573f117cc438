"""numbers and block rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "block_rules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("blocked_number", sa.String(length=32), nullable=False),
        sa.Column("is_global", sa.Boolean(), nullable=False),
        sa.Column("inbound_number", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("block_rules", schema=None) as batch_op:
        batch_op.create_index("ix_block_rules_lookup", ["org_id", "blocked_number"], unique=False)

    op.create_table(
        "inbound_numbers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=150), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone_number"),
    )
    with op.batch_alter_table("inbound_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_numbers_org_id"), ["org_id"], unique=False)

    op.create_table(
        "outbound_numbers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("trunk_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_initiated", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "phone_number"),
    )


def downgrade() -> None:

    op.drop_table("outbound_numbers")
    with op.batch_alter_table("inbound_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_numbers_org_id"))

    op.drop_table("inbound_numbers")
    with op.batch_alter_table("block_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_block_rules_lookup")

    op.drop_table("block_rules")
