"""Tables of the city-management adapter: the outbound delivery queue and poll cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.models import Base, TZDateTime, utcnow

DELIVERY_STATES = ("queued", "sending", "delivered", "dead")


class CitymgmtDelivery(Base):
    """One status update of a case owned by the city-management system, to be pushed.

    Written by the case service's ``on_change`` hook in the transaction of the change.
    ``id`` is the update's ``update_id`` on the wire (stable across retries and restarts);
    ``seq`` is the case's version at the change, so updates of one case go in order.
    """

    __tablename__ = "citymgmt_deliveries"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(26), ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    service_request_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    external_status_code: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    updated_datetime: Mapped[datetime] = mapped_column(TZDateTime)
    state: Mapped[str] = mapped_column(String(12), default="queued")
    """queued, sending (claimed; ``claimed_at`` is its lease), delivered or dead."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_citymgmt_deliveries_case_seq"),
        Index("ix_citymgmt_deliveries_due", "state", "next_attempt_at"),
        Index("ix_citymgmt_deliveries_updated", "updated_datetime"),
    )


class CitymgmtCursor(Base):
    """How far a polled feed of the city-management system has been read."""

    __tablename__ = "citymgmt_cursors"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    polled_until: Mapped[datetime] = mapped_column(TZDateTime)
