"""cases: cases, timeline, attachments, number counters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("district", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district", "year", name=op.f("pk_case_counters")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("category_root", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("tier_org", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reporter_kind", sa.String(length=8), nullable=False),
        sa.Column("reporter_id", sa.String(length=64), nullable=False),
        sa.Column("reporter_name", sa.String(length=64), nullable=False),
        sa.Column("reporter_phone", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("assignee_name", sa.String(length=64), nullable=True),
        sa.Column("external_system", sa.String(length=32), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("external_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clock_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_soon_raised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_raised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("external_system", "external_id", name="uq_cases_external"),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_assignee"), ["assignee"], unique=False)
        batch_op.create_index("ix_cases_due", ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_org"), ["org"], unique=False)
        batch_op.create_index(
            "ix_cases_stats",
            ["created_at", "state", "category_root", "tier", "org", "on_time"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_cases_tier_org"), ["tier_org"], unique=False)
        batch_op.create_index("ix_cases_warn", ["state", "warn_at"], unique=False)

    op.create_table(
        "case_attachments",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("case_id", sa.String(length=26), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_attachments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachments")),
    )
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_attachments_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_id", sa.String(length=26), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("actor_org", sa.String(length=128), nullable=True),
        sa.Column("from_state", sa.String(length=12), nullable=True),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_entries_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entries")),
    )
    with op.batch_alter_table("case_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_entries_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_entries_case_id"))

    op.drop_table("case_entries")
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_attachments_case_id"))

    op.drop_table("case_attachments")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_warn")
        batch_op.drop_index(batch_op.f("ix_cases_tier_org"))
        batch_op.drop_index("ix_cases_stats")
        batch_op.drop_index(batch_op.f("ix_cases_org"))
        batch_op.drop_index("ix_cases_due")
        batch_op.drop_index(batch_op.f("ix_cases_assignee"))

    op.drop_table("cases")
    op.drop_table("case_counters")
