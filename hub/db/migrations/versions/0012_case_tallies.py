"""case tallies: monthly pre-aggregates the case statistics read whole months from

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 16:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_index("ix_cases_updated", "cases", ["updated_at"])
    op.create_table(
        "case_org_tallies",
        sa.Column("month", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("category_root", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint(
            "month",
            "state",
            "category_root",
            "tier",
            "org",
            "on_time",
            name=op.f("pk_case_org_tallies"),
        ),
    )
    op.create_table(
        "case_assignee_tallies",
        sa.Column("month", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint(
            "month", "org", "assignee", "state", "on_time", name=op.f("pk_case_assignee_tallies")
        ),
    )
    op.create_table(
        "case_tally_keys",
        sa.Column("case_id", sa.String(length=26), nullable=False),
        sa.Column("month", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("category_root", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_tally_keys")),
    )
    op.create_table(
        "case_tally_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seen_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_tally_marks")),
    )


def downgrade() -> None:
    op.drop_table("case_tally_marks")
    op.drop_table("case_tally_keys")
    op.drop_table("case_assignee_tallies")
    op.drop_table("case_org_tallies")
    op.drop_index("ix_cases_updated", table_name="cases")
