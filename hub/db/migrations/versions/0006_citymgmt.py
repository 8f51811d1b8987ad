"""citymgmt: outbound delivery queue and poll cursors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citymgmt_deliveries",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("case_id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("service_request_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("external_status_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("updated_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_citymgmt_deliveries_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citymgmt_deliveries")),
        sa.UniqueConstraint("case_id", "seq", name="uq_citymgmt_deliveries_case_seq"),
    )
    with op.batch_alter_table("citymgmt_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_citymgmt_deliveries_due", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_citymgmt_deliveries_updated", ["updated_datetime"], unique=False)
    op.create_table(
        "citymgmt_cursors",
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("polled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("feed", name=op.f("pk_citymgmt_cursors")),
    )


def downgrade() -> None:
    op.drop_table("citymgmt_cursors")
    with op.batch_alter_table("citymgmt_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_citymgmt_deliveries_updated")
        batch_op.drop_index("ix_citymgmt_deliveries_due")
    op.drop_table("citymgmt_deliveries")
