"""The ``requests.json`` feed we serve: the system's requests as our cases now stand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.citymgmt.mapping import SYSTEM
from hub.db.models import Case
from protocols.citymgmt import ServiceRequest, parse_time, request_to_dict, status_for


class CaseFeed:
    """Reads the cases the city-management system owns."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def cases_between(self, start: datetime, end: datetime, limit: int) -> list[Case]:
        """Its cases last changed in [start, end], oldest change first."""
        query = (
            select(Case)
            .where(
                Case.external_system == SYSTEM,
                Case.updated_at >= start.astimezone(UTC),
                Case.updated_at <= end.astimezone(UTC),
            )
            .order_by(Case.updated_at, Case.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())


def case_request(case: Case) -> dict[str, Any]:
    """A case it owns as a GeoReport service request with our status."""
    attributes = case.attributes or {}
    requested = attributes.get("requested_datetime")
    request = ServiceRequest(
        service_request_id=case.external_id or case.id,
        status=status_for(case.state),
        service_code=str(attributes.get("service_code") or case.category),
        service_name=str(attributes.get("service_name") or ""),
        description=case.description,
        lat=case.lat,
        long=case.lon,
        address=case.address,
        requested_datetime=(
            parse_time(requested, "requested_datetime")
            if isinstance(requested, str)
            else case.created_at
        ),
        updated_datetime=case.updated_at,
        media_url=attributes.get("media_url")
        if isinstance(attributes.get("media_url"), str)
        else None,
    )
    out = request_to_dict(request)
    out["status_notes"] = case.state
    return out
