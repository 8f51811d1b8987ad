"""consultations: rooms, participants and recordings of remote video consultations

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.String(length=26), nullable=True),
        sa.Column("host_id", sa.String(length=64), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultations")),
    )
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultations_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_consultations_status", ["status", "created_at"], unique=False)

    op.create_table(
        "consultation_participants",
        sa.Column("consultation_id", sa.String(length=26), nullable=False),
        sa.Column("participant_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("invited_by", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leave_reason", sa.String(length=16), nullable=True),
        sa.Column("muted_audio", sa.Boolean(), nullable=False),
        sa.Column("muted_video", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_consultation_participants_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "consultation_id", "participant_id", name=op.f("pk_consultation_participants")
        ),
    )
    with op.batch_alter_table("consultation_participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consultation_participants_user", ["user_id", "state"], unique=False
        )

    op.create_table(
        "consultation_recordings",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("consultation_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_consultation_recordings_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_recordings")),
    )
    with op.batch_alter_table("consultation_recordings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_recordings_consultation_id"),
            ["consultation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_consultation_recordings_ended_at"), ["ended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consultation_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_recordings_ended_at"))
        batch_op.drop_index(batch_op.f("ix_consultation_recordings_consultation_id"))
    op.drop_table("consultation_recordings")
    with op.batch_alter_table("consultation_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_consultation_participants_user")
    op.drop_table("consultation_participants")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_index("ix_consultations_status")
        batch_op.drop_index(batch_op.f("ix_consultations_case_id"))
    op.drop_table("consultations")
