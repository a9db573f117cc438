"""call record: transcript, pathway log, analysis and transfer columns on calls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transcript", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("pathway_logs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("analysis", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("transferred_to", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for column in (
            "transferred_at",
            "transferred_to",
            "analysis",
            "pathway_logs",
            "transcript",
        ):
            batch.drop_column(column)
