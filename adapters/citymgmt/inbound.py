"""Applying the city-management system's requests and updates to our cases, idempotently.

A request is found by (external_system, external_id). Its ``updated_datetime`` (else
``requested_datetime``) orders its versions against the case's ``external_updated_at``:
the same time again changes nothing, an older one is ignored (counted), a newer one
updates the case's fields and writes an ``update`` timeline row (``case.updated``). A
request without any time can only create its case; once it exists, such a push changes
nothing. Two concurrent pushes of a new request race on the unique (external_system,
external_id) pair: the loser's transaction fails and is applied again, now as an update
of the winner's case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.citymgmt.mapping import (
    SYSTEM,
    actor,
    attributes_for,
    category_for,
    report_for,
    title_for,
)
from adapters.citymgmt.metrics import CitymgmtCounters
from adapters.citymgmt.models import CitymgmtDelivery
from hub.cases.models import ExternalRef
from hub.cases.service import CaseError, CaseService
from hub.config import CitymgmtSettings
from hub.db.models import Case, utcnow
from protocols.citymgmt import RequestUpdate, ServiceRequest

log = structlog.get_logger(__name__)

APPLY_TRIES = 3
"""A lost creation race is applied again as an update; more than that is a real fault."""


class Outcome(StrEnum):
    """What applying one request or update did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    UNKNOWN = "unknown"  # an update of a request we have no case for
    OWN = "own"  # our own update echoed back in their feed
    REFUSED = "refused"  # the case service refused the request (e.g. outside our org)


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome for one request, and the case it concerns."""

    service_request_id: str
    outcome: Outcome
    case_id: str | None = None
    message: str = ""


class RequestApplier:
    """Creates and updates the cases the city-management system owns."""

    def __init__(
        self, cases: CaseService, settings: CitymgmtSettings, counters: CitymgmtCounters
    ) -> None:
        self._cases = cases
        self._settings = settings
        self._counters = counters

    async def apply_request(self, request: ServiceRequest) -> Applied:
        """Create or update the request's case; see the module docstring."""
        for attempt in range(1, APPLY_TRIES + 1):
            try:
                applied = await self._apply_request(request)
            except (IntegrityError, Raced):
                if attempt == APPLY_TRIES:
                    raise
                self._counters.races += 1
                continue
            except CaseError as err:
                log.warning(
                    "city-management request refused",
                    code=err.code,
                    service_request_id=request.service_request_id,
                    error=err.message,
                )
                applied = Applied(request.service_request_id, Outcome.REFUSED, None, err.message)
            break
        self._counters.request(applied.outcome.value)
        if applied.outcome in (Outcome.CREATED, Outcome.UPDATED):
            self._cases.relay.notify()
        return applied

    async def _apply_request(self, request: ServiceRequest) -> Applied:
        rid = request.service_request_id
        now = utcnow()
        async with self._cases.sessions() as session, session.begin():
            case = await _find(session, rid)
            if case is None:
                category = category_for(request.service_code, self._cases.categories.root_of)
                ref = ExternalRef(system=SYSTEM, id=rid, updated_at=request.version)
                case = await self._cases.new_case(
                    session, actor(self._settings.org), report_for(request, category), now, ref
                )
                await session.flush()  # a concurrent twin fails here (IntegrityError)
                return Applied(rid, Outcome.CREATED, case.id)
            order = _order(request.version, case.external_updated_at)
            if order is not Outcome.UPDATED:
                return Applied(rid, order, case.id)
            await _hold(session, case)
            changed = self._update_fields(case, request)
            await self._cases.record(
                session, case, "update", actor(self._settings.org),
                note=request.extra.get("status_notes", ""),
                details={"changed": changed, "status": request.status}, now=now,
            )  # fmt: skip
            return Applied(rid, Outcome.UPDATED, case.id)

    def _update_fields(self, case: Case, request: ServiceRequest) -> list[str]:
        """Copy the request's fields onto the case; the names of those that changed."""
        category = category_for(request.service_code, self._cases.categories.root_of)
        values: dict[str, Any] = {
            "title": title_for(request),
            "description": request.description,
            "category": category,
            "category_root": self._cases.categories.root_of[category],
            "lat": request.lat,
            "lon": request.long,
            "address": request.address if request.lat is not None else None,
            "attributes": {**case.attributes, **attributes_for(request)},
        }
        changed = [name for name, value in values.items() if getattr(case, name) != value]
        for name in changed:
            setattr(case, name, values[name])
        case.external_updated_at = request.version
        return changed

    async def apply_update(self, update: RequestUpdate) -> Applied:
        """Apply one of their request updates (from the polled feed) to its case."""
        for attempt in range(1, APPLY_TRIES + 1):
            try:
                return await self._apply_update(update)
            except Raced:
                if attempt == APPLY_TRIES:
                    raise
                self._counters.races += 1
        raise AssertionError("unreachable")

    async def _apply_update(self, update: RequestUpdate) -> Applied:
        rid = update.service_request_id
        now = utcnow()
        async with self._cases.sessions() as session, session.begin():
            if await session.get(CitymgmtDelivery, update.update_id) is not None:
                applied = Applied(rid, Outcome.OWN)
            elif (case := await _find(session, rid)) is None:
                applied = Applied(rid, Outcome.UNKNOWN)
            else:
                order = _order(update.updated_datetime, case.external_updated_at)
                applied = Applied(rid, order, case.id)
                if order is Outcome.UPDATED:
                    await _hold(session, case)
                    case.attributes = {**case.attributes, "status": update.status}
                    case.external_updated_at = update.updated_datetime
                    await self._cases.record(
                        session, case, "update", actor(self._settings.org),
                        note=update.description,
                        details={"status": update.status, "update_id": update.update_id},
                        now=now,
                    )  # fmt: skip
        self._counters.update(applied.outcome.value)
        if applied.outcome is Outcome.UPDATED:
            self._cases.relay.notify()
        return applied


class Raced(Exception):
    """The case changed between reading and writing it (SQLite has no row locks)."""


async def _hold(session: AsyncSession, case: Case) -> None:
    """Take the write lock on ``case`` as read, or Raced if it changed since: the
    decision to update was made on what we read. (PostgreSQL already holds the row lock
    from ``_find``; on SQLite this write takes the database's write lock, after which no
    other writer can commit until we do.)"""
    result = await session.execute(
        sql_update(Case)
        .where(Case.id == case.id, Case.version == case.version)
        .values(version=case.version)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise Raced(case.id)


async def _find(session: AsyncSession, service_request_id: str) -> Case | None:
    """The case of a request, row-locked for the transaction (PostgreSQL)."""
    query = (
        select(Case)
        .where(Case.external_system == SYSTEM, Case.external_id == service_request_id)
        .with_for_update()
    )
    result: Case | None = await session.scalar(query)
    return result


def _order(incoming: datetime | None, stored: datetime | None) -> Outcome:
    """UPDATED if ``incoming`` is newer than what the case has, else UNCHANGED or STALE."""
    if incoming is None:
        return Outcome.UNCHANGED
    if stored is None or incoming > stored:
        return Outcome.UPDATED
    return Outcome.UNCHANGED if incoming == stored else Outcome.STALE
