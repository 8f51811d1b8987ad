"""notice SMS fallback: the SMS sent to an unread recipient and its reply code

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice_recipients") as batch:
        batch.add_column(sa.Column("sms_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reply_code", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_recipients") as batch:
        batch.drop_column("reply_code")
        batch.drop_column("sms_id")
