"""worker locations: workers registry, positions, latest positions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:50:31.819301
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "positions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("fix_time", sa.Float(precision=53), nullable=False),
        sa.Column("sent_time", sa.Float(precision=53), nullable=True),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
        sa.Column("lat", sa.Float(precision=53), nullable=False),
        sa.Column("lon", sa.Float(precision=53), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("altitude_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("battery_pct", sa.Float(), nullable=True),
        sa.Column("source_datum", sa.String(length=8), nullable=False),
        sa.Column("outside", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("worker_id", "fix_time", name="uq_positions_worker_fix"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("grid", sa.String(length=128), nullable=False),
        sa.Column("datum", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("duty", sa.String(length=8), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid"], ["org_nodes.path"], name=op.f("fk_workers_grid_org_nodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_grid"), ["grid"], unique=False)

    op.create_table(
        "latest_positions",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("fix_time", sa.Float(precision=53), nullable=False),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
        sa.Column("lat", sa.Float(precision=53), nullable=False),
        sa.Column("lon", sa.Float(precision=53), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("battery_pct", sa.Float(), nullable=True),
        sa.Column("in_grid", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_latest_positions_worker_id_workers")
        ),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_latest_positions")),
    )


def downgrade() -> None:
    op.drop_table("latest_positions")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_grid"))

    op.drop_table("workers")
    op.drop_table("positions")
