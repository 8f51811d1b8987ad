"""Outbox: a hub killed between commit and publish (or between publish and mark) loses
nothing; a subscriber that deduplicates by event id sees each event exactly once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.engine import make_engine, make_sessionmaker
from hub.db.models import OutboxEvent
from tests.conftest import Backend, backend_settings, delete_redis_prefix
from tests.support.clients import alert, next_item, post_event, subscribe
from tests.support.hubs import hub_process, settings_env, token
from tests.support.services import REDIS_URL, require_redis

pytestmark = pytest.mark.timeout(180)


async def _outbox_rows(database_url: str, event_id: str) -> list[OutboxEvent]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(OutboxEvent).where(OutboxEvent.event_id == event_id)
            )
            return list(rows)
    finally:
        await engine.dispose()


async def test_event_committed_before_a_sigkill_is_published_once_after_restart(
    backend: Backend, tmp_path: Path
) -> None:
    env = settings_env(backend_settings(backend))
    with hub_process(env, tmp_path) as hub:
        # Relay off: the hub commits events but never publishes them - the crash window.
        hub.start(HUB_OUTBOX__ENABLED="false")
        await hub.wait_ready()
        status, body = await post_event(hub.url, alert("d01.s02.c01.g02", "断电前提交"))
        assert status == 202, body
        event_id = body["id"]
        [row] = await _outbox_rows(backend.database_url, event_id)
        assert row.published_at is None
        hub.kill()  # SIGKILL

        hub.start()
        await hub.wait_ready()
        received = await _collect_event(hub.ws_url, "org:d01.s02", event_id)
        assert received == [event_id]
        [row] = await _outbox_rows(backend.database_url, event_id)
        assert row.published_at is not None


async def _collect_event(ws_url: str, channel: str, event_id: str) -> list[str]:
    """Subscribe; the relay may have published before we subscribed, so read history too,
    deduplicating by id as every consumer must."""
    watched = await subscribe(ws_url, token("s02-dispatcher", "d01.s02", ["dispatcher"]), channel)
    client, sub, recorder = watched.client, watched.subscription, watched.recorder
    seen: dict[str, int] = {}
    history = await sub.history(limit=100)
    for pub in history.publications:
        seen[pub.data["id"]] = seen.get(pub.data["id"], 0) + 1
    while event_id not in seen:
        pub = (await next_item(recorder.publications)).pub
        seen[pub.data["id"]] = seen.get(pub.data["id"], 0) + 1
    await client.disconnect()
    assert seen[event_id] == 1, "published more than once on one stream"
    return [i for i in seen if i == event_id]


async def test_crash_between_publish_and_mark_republishes_and_consumer_dedupes(
    tmp_path: Path, postgres_database: str
) -> None:
    """With Redis, a subscriber on a second hub process outlives the crash: it receives the
    event twice on the wire (at-least-once) and once after deduplication by id."""
    require_redis()
    backend = Backend("postgres-redis", postgres_database, REDIS_URL, f"test-{uuid.uuid4().hex}")
    env = settings_env(backend_settings(backend))
    try:
        with hub_process(env, tmp_path) as writer, hub_process(env, tmp_path) as reader:
            reader.start(HUB_OUTBOX__ENABLED="false")
            writer.start(HUB_TEST_CRASH_AFTER_PUBLISH="1")
            await reader.wait_ready()
            await writer.wait_ready()

            watched = await subscribe(
                reader.ws_url, token("d01-dispatcher", "d01", ["dispatcher"]), "org:d01.s03"
            )
            client, recorder = watched.client, watched.recorder

            status, body = await post_event(writer.url, alert("d01.s03.c03", "发布后崩溃"))
            assert status == 202, body
            event_id = body["id"]
            first = (await next_item(recorder.publications)).pub
            assert first.data["id"] == event_id
            assert writer.proc is not None
            assert writer.proc.wait(timeout=30) == 70  # died before marking the row

            writer.start()  # the relay finds the row unmarked and publishes it again
            await writer.wait_ready()
            second = (await next_item(recorder.publications)).pub
            assert second.data["id"] == event_id
            assert second.offset == first.offset + 1
            delivered = {first.data["id"], second.data["id"]}
            assert delivered == {event_id}  # exactly once after deduplication by id
            [row] = await _outbox_rows(postgres_database, event_id)
            assert row.published_at is not None
            await client.disconnect()
    finally:
        await delete_redis_prefix(backend.redis_prefix)
