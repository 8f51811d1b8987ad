"""Acceptance 1: a thousand pushes — duplicates, out-of-order updates, concurrent twins —
leave exactly one case per request, holding the newest version's fields."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import aiohttp
from sqlalchemy import func, select

from hub.db.models import Case, CaseEntry
from tests.conftest import RunningHub
from tests.integration.citymgmt.conftest import push, request
from tests.support.citymgmt import StandIn

REQUESTS = 200
VERSIONS = 3
PUSHES = 1000
CONCURRENCY = 16
ARRAY_EVERY = 7
TWIN_EVERY = 10
"""Every seventh push carries a request together with the next one, as an array."""


def _pushes(rng: random.Random) -> list[list[dict[str, Any]]]:
    versions = [(n, v) for n in range(REQUESTS) for v in range(VERSIONS)]
    twins = list(range(0, REQUESTS, TWIN_EVERY))
    extra = PUSHES - len(versions) - 2 * len(twins)
    sends = versions + [rng.choice(versions) for _ in range(extra)]
    rng.shuffle(sends)  # out of order, duplicates spread all over
    # Some new requests arrive as concurrent twins: the same first push twice in a row.
    for n in twins:
        at = rng.randrange(len(sends))
        sends[at:at] = [(n, 0), (n, 0)]
    batches: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(sends):
        size = 2 if i % ARRAY_EVERY == 0 and i + 1 < len(sends) else 1
        batches.append([_body(*pair) for pair in sends[i : i + size]])
        i += size
    return batches


def _body(n: int, version: int) -> dict[str, Any]:
    code = "parking" if version == VERSIONS - 1 else "street_vending"
    return request(n, version, description=f"request {n} version {version}", service_code=code)


async def test_a_thousand_pushes_with_duplicates_and_disorder_leave_the_right_cases(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    batches = _pushes(random.Random(20261123))
    assert sum(len(b) for b in batches) == PUSHES
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: Counter[str] = Counter()

    async def send(batch: list[dict[str, Any]]) -> None:
        async with gate:
            status, answer = await push(stand_in, http, citymgmt_hub,
                                        batch if len(batch) > 1 else batch[0])  # fmt: skip
        assert status == 200, answer
        outcomes.update(item["outcome"] for item in answer)

    await asyncio.gather(*(send(b) for b in batches))

    assert outcomes["created"] == REQUESTS
    assert sum(outcomes.values()) == PUSHES
    assert set(outcomes) <= {"created", "updated", "unchanged", "stale"}
    async with citymgmt_hub.hub.sessions() as session:
        cases = (await session.scalars(select(Case))).all()
        updates = await session.scalar(
            select(func.count()).select_from(CaseEntry).where(CaseEntry.action == "update")
        )
    assert len(cases) == REQUESTS
    assert updates == outcomes["updated"]
    by_id = {c.external_id: c for c in cases}
    last = VERSIONS - 1
    for n in range(REQUESTS):
        case = by_id[f"SR-{n:05d}"]
        assert case.description == f"request {n} version {last}"
        assert case.category == "citymgmt.parking"
        assert case.attributes["service_code"] == "parking"
        assert case.external_updated_at is not None
        assert case.external_updated_at.isoformat() == request(n, last)["updated_datetime"]
