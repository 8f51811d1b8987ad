"""cameras: the public-security camera registry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("lat", sa.Float(precision=53), nullable=True),
        sa.Column("lon", sa.Float(precision=53), nullable=True),
        sa.Column("source_url", sa.String(length=1024), nullable=False),
        sa.Column("substream_url", sa.String(length=1024), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("ptz", sa.Boolean(), nullable=False),
        sa.Column("onvif_username", sa.String(length=64), nullable=True),
        sa.Column("onvif_password", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org"], ["org_nodes.path"], name=op.f("fk_cameras_org_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_org"), ["org"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_org"))

    op.drop_table("cameras")
