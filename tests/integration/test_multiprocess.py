"""Two hub processes on one Redis and one PostgreSQL: an event pushed to one reaches a
client of the other, and the client recovers what it missed across a reconnect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Backend, backend_settings, delete_redis_prefix
from tests.support.clients import Recorder, alert, next_item, post_event, sdk_client, subscribe
from tests.support.hubs import hub_process, settings_env, token
from tests.support.services import REDIS_URL, require_redis

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def redis_backend(postgres_database: str) -> AsyncIterator[Backend]:
    """PostgreSQL + Redis with a key prefix of this test's own."""
    require_redis()
    backend = Backend("postgres-redis", postgres_database, REDIS_URL, f"test-{uuid.uuid4().hex}")
    yield backend
    await delete_redis_prefix(backend.redis_prefix)


async def test_publication_on_one_process_reaches_client_of_other_and_recovers(
    redis_backend: Backend, tmp_path: Path
) -> None:
    env = settings_env(backend_settings(redis_backend))
    with hub_process(env, tmp_path) as first, hub_process(env, tmp_path) as second:
        first.start()
        second.start()
        await first.wait_ready()
        await second.wait_ready()

        watched = await subscribe(
            second.ws_url, token("s01c02-leader", "d01.s01.c02", ["grid_leader"]), "org:d01.s01.c02"
        )
        client, recorder = watched.client, watched.recorder
        assert not watched.subscribed.was_recovering

        status, body = await post_event(first.url, alert("d01.s01.c02.g04", "跨进程"))
        assert status == 202, body
        assert (await next_item(recorder.publications)).pub.data["id"] == body["id"]

        await client.disconnect()
        missed = []
        for i in range(5):
            status, body = await post_event(first.url, alert("d01.s01.c02", f"断线期间 {i}"))
            assert status == 202, body
            missed.append(body["id"])
        # The last one arrived live at nobody; wait until it is in the channel's stream
        # by watching it from a second client on the first process.
        watcher = Recorder()
        probe = sdk_client(first.ws_url, token("d01-leader", "d01", ["leader"]), watcher)
        await probe.connect()
        probe_sub = probe.new_subscription("org:d01.s01.c02", events=watcher)
        await probe_sub.subscribe()
        await next_item(watcher.subscribed)
        while True:
            history = await probe_sub.history(limit=10)
            if missed[-1] in [p.data["id"] for p in history.publications]:
                break
            await next_item(watcher.publications)
        await probe.disconnect()

        await client.connect()
        again = await next_item(recorder.subscribed)
        assert again.was_recovering and again.recovered
        got = [(await next_item(recorder.publications)).pub.data["id"] for _ in missed]
        assert got == missed
        await client.disconnect()
