"""sms: outbound queue with per-part provider ids and match keys, inbound messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("to", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("coding", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
    )
    op.create_index("ix_sms_messages_due", "sms_messages", ["state", "next_attempt_at"])
    op.create_table(
        "sms_parts",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=72), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sms_messages.id"],
            name=op.f("fk_sms_parts_message_id_sms_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "seq", name=op.f("pk_sms_parts")),
    )
    op.create_index(op.f("ix_sms_parts_provider_id"), "sms_parts", ["provider_id"])
    op.create_table(
        "sms_match_keys",
        sa.Column("key", sa.String(length=72), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "message_id", "seq", name=op.f("pk_sms_match_keys")),
    )
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=72), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbound")),
        sa.UniqueConstraint("provider", "provider_id", name="uq_sms_inbound_provider_id"),
    )
    op.create_index(op.f("ix_sms_inbound_received_at"), "sms_inbound", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_inbound_received_at"), table_name="sms_inbound")
    op.drop_table("sms_inbound")
    op.drop_table("sms_match_keys")
    op.drop_index(op.f("ix_sms_parts_provider_id"), table_name="sms_parts")
    op.drop_table("sms_parts")
    op.drop_index("ix_sms_messages_due", table_name="sms_messages")
    op.drop_table("sms_messages")
