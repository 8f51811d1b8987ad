"""Camera recordings end to end: a real RTSP camera, the hub remuxing it to MP4 (probed with
PyAV), downloads with HTTP ranges, alarm-triggered recordings attached to the alarm's case,
and retention by age and total size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from sqlalchemy import select, update

from hub.db.models import Recording, utcnow
from tests.conftest import Backend, RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cameras.conftest import (
    FIRE_CATEGORY,
    GATE,
    OTHER_STREET,
    STREET,
    WORKER,
    push_alarm,
    start_camera_hub,
)
from tests.support.clients import Subscriber, next_item, subscribe
from tests.support.rtsp_server import FPS, GOP, HEIGHT, WIDTH, RtspServer, frame_number

GOP_SECONDS = GOP / FPS
ALARM_SECONDS = 2.0
DONE_WAIT = 30.0


async def _recording_hub(backend: Backend, tmp_path: Path, camera: RtspServer) -> RunningHub:
    return await start_camera_hub(
        backend,
        tmp_path,
        camera,
        media={"recordings_dir": tmp_path / "recordings", "alarm_record_seconds": ALARM_SECONDS},
        cameras={"alarm_case_rules": {"fire": FIRE_CATEGORY}},
    )


@pytest.fixture
async def media_hub(
    sqlite_backend: Backend, tmp_path: Path, camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """A SQLite hub whose camera GATE is the test RTSP server."""
    running = await _recording_hub(sqlite_backend, tmp_path, camera)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def any_hub(
    backend: Backend, tmp_path: Path, camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """The same on each backend."""
    running = await _recording_hub(backend, tmp_path, camera)
    try:
        yield running
    finally:
        await running.server.close()


async def _done(watcher: Subscriber, recording_id: str | None = None) -> dict[str, Any]:
    """The next ``camera.recording_done`` (of ``recording_id``) on the watched channel."""
    async with asyncio.timeout(DONE_WAIT):
        while True:
            envelope = (await next_item(watcher.recorder.publications, DONE_WAIT)).pub.data
            if envelope["type"] != "camera.recording_done":
                continue
            data: dict[str, Any] = envelope["data"]
            if recording_id in (None, data["recording_id"]):
                return data


def _probe(path: Path) -> tuple[float, str, int, int, list[int]]:
    """(duration, codec, width, height, frame numbers) of an MP4, every frame decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        numbers = [frame_number(f) for f in container.decode(stream)]
        ctx = stream.codec_context
        return container.duration / 1e6, ctx.name, ctx.width, ctx.height, numbers


async def test_ten_second_recording_is_a_playable_remux_with_pre_roll(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    api = Api(aiohttp.ClientSession(), media_hub.url, STREET.token)
    watcher = await subscribe(media_hub.ws_url, STREET.token, f"camera:{GATE}")
    try:
        # A snapshot first: the pull is up and its GOP cached, as when someone watches. It
        # would stop after the 1 s idle timeout, but the recording counts as a viewer.
        snap = await api.call("GET", f"/api/v1/cameras/{GATE}/snapshot.jpg")
        assert snap.status == 200
        decoded, encoded = streams.counters.frames_decoded, streams.counters.frames_encoded
        started = await api.post(f"/api/v1/cameras/{GATE}/recordings", {"seconds": 10})
        assert started.status == 202, started.body
        rid = started.body["id"]
        assert started.body["state"] == "recording" and started.body["trigger"] == "manual"
        done = await _done(watcher, rid)
        assert done["state"] == "done", done
        meta = (await api.get(f"/api/v1/recordings/{rid}")).body
        assert meta["state"] == "done" and meta["size"] == done["size"] > 0

        recordings = media_hub.hub.recordings
        assert recordings is not None
        row = await recordings.get(rid)
        assert row is not None
        path = recordings.file(row)
        assert not path.with_name(path.name + ".part").exists()
        duration, codec, width, height, numbers = await asyncio.to_thread(_probe, path)
        print(f"\n10 s recording: {duration:.3f} s in the MP4, {meta['size']} bytes, "
              f"{len(numbers)} frames from frame {numbers[0]}")  # fmt: skip
        assert abs(duration - 10) <= GOP_SECONDS
        assert abs(meta["duration_s"] - duration) < 0.1
        assert (codec, width, height) == ("h264", WIDTH, HEIGHT)
        # From a keyframe (the pre-roll), every frame, in order, none lost or repeated.
        assert numbers[0] % GOP == 0
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert abs(len(numbers) - 10 * FPS) <= GOP
        # Remuxed: the hub decoded and encoded nothing for it.
        assert streams.counters.frames_decoded == decoded
        assert streams.counters.frames_encoded == encoded

        whole = path.read_bytes()
        auth = {"Authorization": f"Bearer {STREET.token}"}
        url = f"/api/v1/recordings/{rid}/file"
        async with api.http.get(
            media_hub.url + url, headers={**auth, "Range": "bytes=100-1099"}
        ) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
            assert await resp.read() == whole[100:1100]
        async with api.http.get(media_hub.url + url, headers=auth) as resp:
            assert resp.status == 200 and resp.content_type == "video/mp4"
            assert await resp.read() == whole
        async with api.http.get(
            media_hub.url + url, headers={"Authorization": f"Bearer {OTHER_STREET.token}"}
        ) as resp:
            assert resp.status == 404
    finally:
        await watcher.client.disconnect()
        await api.http.close()


async def test_alarm_records_and_the_recording_joins_the_alarm_case(
    any_hub: RunningHub, camera: RtspServer
) -> None:
    recordings = any_hub.hub.recordings
    assert recordings is not None
    api = Api(aiohttp.ClientSession(), any_hub.url, STREET.token)
    watcher = await subscribe(any_hub.ws_url, STREET.token, f"camera:{GATE}")
    try:
        status, alarm = await push_alarm(
            any_hub.url, GATE, {"kind": "fire", "level": "critical", "description": "烟雾"}
        )
        assert status == 202, alarm
        manual = await api.post(f"/api/v1/cameras/{GATE}/recordings", {"seconds": 3})
        assert manual.status == 202, manual.body
        finished = {}
        for _ in range(2):
            data = await _done(watcher)
            finished[data["trigger"]] = data
        assert {d["state"] for d in finished.values()} == {"done"}, finished
        assert finished["manual"]["recording_id"] == manual.body["id"]
        alarm_rid = finished["alarm"]["recording_id"]
        assert abs(finished["alarm"]["duration_s"] - ALARM_SECONDS) <= GOP_SECONDS

        listed = (await api.get(f"/api/v1/cameras/{GATE}/recordings")).body["items"]
        assert {r["id"] for r in listed} == {alarm_rid, manual.body["id"]}
        assert (
            await api.as_(OTHER_STREET.token).get(f"/api/v1/recordings/{alarm_rid}")
        ).status == 404
        refused = await api.as_(WORKER.token).post(
            f"/api/v1/cameras/{GATE}/recordings", {"seconds": 3}
        )
        assert (refused.status, refused.body["error"]["code"]) == (403, "auth.forbidden")
        too_long = await api.post(f"/api/v1/cameras/{GATE}/recordings", {"seconds": 3600})
        assert (too_long.status, too_long.body["error"]["code"]) == (422, "recording.invalid")

        case_id = alarm["case_id"]
        attached = await api.post(f"/api/v1/recordings/{alarm_rid}/attach", {"case_id": case_id})
        assert attached.status == 201, attached.body
        assert attached.body["content_type"] == "video/mp4"
        assert attached.body["size"] == finished["alarm"]["size"]
        case = (await api.get(f"/api/v1/cases/{case_id}")).body
        assert [a["id"] for a in case["attachments"]] == [attached.body["id"]]
        assert (await api.get(f"/api/v1/recordings/{alarm_rid}")).body["case_id"] == case_id
        elsewhere = await api.as_(OTHER_STREET.token).post(
            f"/api/v1/recordings/{alarm_rid}/attach", {"case_id": case_id}
        )
        assert elsewhere.status == 404
    finally:
        await watcher.client.disconnect()
        await api.http.close()


async def test_retention_deletes_the_oldest_beyond_the_size_cap_then_by_age(
    any_hub: RunningHub, camera: RtspServer
) -> None:
    recordings = any_hub.hub.recordings
    assert recordings is not None
    api = Api(aiohttp.ClientSession(), any_hub.url, STREET.token)
    watcher = await subscribe(any_hub.ws_url, STREET.token, f"camera:{GATE}")
    try:
        ids = []
        for _ in range(3):
            started = await api.post(f"/api/v1/cameras/{GATE}/recordings", {"seconds": 1})
            assert started.status == 202, started.body
            ids.append(started.body["id"])
        done = {}
        while len(done) < len(ids):
            data = await _done(watcher)
            done[data["recording_id"]] = data
        assert {d["state"] for d in done.values()} == {"done"}
        # Started in this order: ids[0] is the oldest.
        async with any_hub.hub.sessions() as session, session.begin():
            for age, rid in enumerate(reversed(ids)):
                await session.execute(
                    update(Recording)
                    .where(Recording.id == rid)
                    .values(started_at=utcnow() - timedelta(hours=age + 1))
                )
        rows = {rid: await recordings.get(rid) for rid in ids}
        files = {rid: recordings.file(row) for rid, row in rows.items() if row is not None}
        assert all(f.exists() for f in files.values())

        newest_two = done[ids[1]]["size"] + done[ids[2]]["size"]
        recordings.settings = recordings.settings.model_copy(
            update={"retention_max_bytes": newest_two}
        )
        assert await recordings.sweep() == 1
        assert not files[ids[0]].exists() and await recordings.get(ids[0]) is None
        assert files[ids[1]].exists() and files[ids[2]].exists()

        assert await recordings.sweep() == 0
        later = utcnow() + timedelta(days=recordings.settings.retention_days, minutes=-90)
        assert await recordings.sweep(later) == 1  # ids[1] is two hours old, ids[2] one
        assert await recordings.get(ids[1]) is None and await recordings.get(ids[2]) is not None
        async with any_hub.hub.sessions() as session:
            left = (await session.scalars(select(Recording.id))).all()
        assert left == [ids[2]]
    finally:
        await watcher.client.disconnect()
        await api.http.close()
