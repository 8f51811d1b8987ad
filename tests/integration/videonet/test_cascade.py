"""The resource cascade against a stand-in upper platform speaking real SIP: the hub
registers with digest auth, keeps alive, renews, backs off while the gateway is down,
answers Catalog queries with every camera (split as asked), streams a camera as MPEG-PS
over RTP on each transport from the camera's one shared pull, forwards PTZ and sends alarms
upward; bad requests get the right SIP answer."""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import update

from hub.db.models import Camera
from tests.conftest import Backend, RunningHub
from tests.integration.cameras.conftest import push_alarm
from tests.integration.videonet.conftest import (
    DOMAIN,
    GATE,
    HUB_ID,
    PASSWORD,
    WAIT,
    camera_ids,
    cascade_of,
    channel_of,
    start_cascade_hub,
)
from tests.support.gb_upper import InviteRefused, UpperPlatform
from tests.support.onvif_camera import FakeOnvifCamera
from tests.support.rawws import eventually
from tests.support.rtsp_server import HEIGHT, WIDTH, frame_number, free_port
from tests.support.sipp import run_sipp

PAN_RIGHT = "A50F0101FF0000B5"
"""PTZCmd: pan right at full speed (GB/T 28181 A.3)."""
PTZ_STOP = "A50F0100000000B5"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_registers_keeps_alive_and_answers_catalog(
    backend: Backend, tmp_path: Path, upper: UpperPlatform, transport: str
) -> None:
    running = await start_cascade_hub(backend, tmp_path, upper.port, transport=transport)
    try:
        registration = await upper.wait_registered(WAIT)
        assert registration.username == HUB_ID
        assert registration.transport == transport
        assert upper.challenges >= 1  # it had to answer a digest challenge
        await upper.wait_keepalives(2, timeout=WAIT)
        cascade = cascade_of(running)
        await eventually(lambda: cascade.ready, "the cascade to be ready")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{running.url}/readyz") as response,
        ):
            checks = (await response.json())["checks"]
        assert checks["adapter:videonet-cascade"] == "ok"
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{running.url}/metrics") as response,
        ):
            metrics = await response.text()
        assert "hub_videonet_cascade_registered 1.0" in metrics
        assert "hub_videonet_cascade_registrations_total 1.0" in metrics

        items = await upper.query_catalog(WAIT)
        ids = await camera_ids(running)
        assert len(items) == len(ids) > 2
        assert upper.last_catalog_messages == math.ceil(len(ids) / 2)  # catalog_batch 2
        assert len({item["DeviceID"] for item in items}) == len(ids)
        gate_channel = await channel_of(running, GATE)
        gate = next(item for item in items if item["DeviceID"] == gate_channel)
        assert gate["CivilCode"] == "34020101"  # d01.s01's code
        assert gate["ParentID"] == HUB_ID
        assert gate["Status"] in ("ON", "OFF")
        assert all(len(item["DeviceID"]) == 20 and item["DeviceID"].isdigit() for item in items)
    finally:
        await running.server.close()
    await upper.wait_unregistered(WAIT)  # the hub said goodbye when it stopped


async def test_wrong_password_keeps_retrying_and_not_ready(
    sqlite_backend: Backend, tmp_path: Path, upper: UpperPlatform
) -> None:
    running = await start_cascade_hub(sqlite_backend, tmp_path, upper.port, password="wrong")
    try:
        cascade = cascade_of(running)
        await eventually(lambda: cascade.counters.registration_failures >= 2, "two refusals")
        assert not cascade.ready
        assert upper.registration is None
        assert any("password" in why or "response" in why for why in upper.auth_failures)
    finally:
        await running.server.close()


async def test_renews_before_expiry_and_comes_back_after_gateway_loss(
    sqlite_backend: Backend, tmp_path: Path, upper: UpperPlatform
) -> None:
    running = await start_cascade_hub(
        sqlite_backend, tmp_path, upper.port, register_expires=2, request_timeout=0.5
    )
    try:
        cascade = cascade_of(running)
        await upper.wait_register_count(3, timeout=WAIT)  # renewed at 1.5 s, twice
        assert cascade.ready
        count = upper.register_count
        await upper.close()  # the gateway goes away: keepalives fail, registrations fail
        await eventually(lambda: not cascade.ready, "the cascade to notice the loss")
        failures = cascade.counters.registration_failures
        await eventually(lambda: cascade.counters.registration_failures >= failures + 2, "retries")
        await upper.start()  # back on the same port
        await upper.wait_register_count(count + 1, timeout=WAIT)
        await eventually(lambda: cascade.ready, "the cascade to be ready again")
    finally:
        await running.server.close()


@pytest.mark.parametrize("transport", ["udp", "tcp_active", "tcp_passive"])
async def test_invite_streams_the_camera_as_ps(
    cascade_hub: RunningHub, upper: UpperPlatform, transport: str
) -> None:
    await upper.wait_registered(WAIT)
    channel = await channel_of(cascade_hub, GATE)
    session = await upper.invite(channel, transport, timeout=WAIT)
    await session.wait_packets(80, timeout=WAIT)
    assert session.ssrc_mismatches == 0 and session.payload_type_mismatches == 0
    assert session.answer is not None
    frames = await asyncio.to_thread(session.decode)
    assert len(frames) >= 10
    assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}
    numbers = [frame_number(f) for f in frames]
    steps = [b - a for a, b in itertools.pairwise(numbers)]
    assert steps.count(1) >= len(steps) - 2, numbers  # the camera's frames, in order
    cascade = cascade_of(cascade_hub)
    assert cascade.streams_open == 1
    assert await session.bye() == 200
    await eventually(lambda: cascade.streams_open == 0, "the stream to stop")
    sent = cascade.push_counters.packets_sent
    await asyncio.sleep(0.3)  # nothing may be sent after BYE: watch a few frame times
    assert cascade.push_counters.packets_sent == sent


async def test_camera_pulled_once_for_viewers_and_cascaded_streams(
    cascade_hub: RunningHub, upper: UpperPlatform
) -> None:
    await upper.wait_registered(WAIT)
    channel = await channel_of(cascade_hub, GATE)
    streams = cascade_hub.hub.streams
    assert streams is not None
    first = await upper.invite(channel, "udp", timeout=WAIT)
    second = await upper.invite(channel, "tcp_passive", timeout=WAIT)
    camera, viewer, _ = await streams.open_stream(GATE, (await _url(cascade_hub)))
    try:
        await first.wait_packets(50, timeout=WAIT)
        await second.wait_packets(50, timeout=WAIT)
        assert await viewer.get() is not None
        assert streams.pulls_running == 1
        assert streams.counters.pulls_started == 1
        assert streams.viewers(GATE) == 3
    finally:
        streams.release(camera, viewer)
    assert await first.bye() == 200
    assert await second.bye() == 200


async def _url(running: RunningHub) -> str:
    async with running.hub.sessions() as session:
        row = await session.get(Camera, GATE)
    assert row is not None
    return row.source_url


async def test_ptz_from_above_steers_the_onvif_camera(
    cascade_hub: RunningHub, upper: UpperPlatform
) -> None:
    fake = await FakeOnvifCamera("onvif-op", "onvif-pa55").start()
    try:
        async with cascade_hub.hub.sessions() as session, session.begin():
            await session.execute(
                update(Camera).where(Camera.id == GATE).values(
                    ptz=True, onvif_url=fake.device_url, onvif_username="onvif-op",
                    onvif_password="onvif-pa55",
                )
            )  # fmt: skip
        await upper.wait_registered(WAIT)
        channel = await channel_of(cascade_hub, GATE)
        assert await upper.device_control(channel, PAN_RIGHT, WAIT) == 200
        move = await fake.wait_for("ContinuousMove")
        assert move.args["pan"] > 0.9 and move.args["tilt"] == 0
        result = await upper.next_message("DeviceControl", WAIT)
        assert result.fields.get("Result") == "OK"
        assert await upper.device_control(channel, PTZ_STOP, WAIT) == 200
        await fake.wait_for("Stop")
    finally:
        await fake.stop()


async def test_camera_alarm_goes_upward(cascade_hub: RunningHub, upper: UpperPlatform) -> None:
    await upper.wait_registered(WAIT)
    alarm_body = {"kind": "intrusion", "level": "warning", "description": "翻越围墙"}
    status, reply = await push_alarm(cascade_hub.url, GATE, alarm_body)
    assert status == 202, reply
    alarm = await upper.next_message("Alarm", WAIT)
    assert alarm.device_id == await channel_of(cascade_hub, GATE)
    assert alarm.fields["AlarmPriority"] == "2"
    assert alarm.fields["AlarmDescription"] == "翻越围墙"
    assert alarm.charset_ok


async def test_bad_requests_get_the_right_answer(
    cascade_hub: RunningHub, upper: UpperPlatform
) -> None:
    await upper.wait_registered(WAIT)
    with pytest.raises(InviteRefused) as unknown:
        await upper.invite("34020000001319999999", "udp", timeout=WAIT)
    assert unknown.value.status == 404
    no_ps = upper.offer(9, "udp", "0200000001").replace("PS/90000", "H264/90000")
    with pytest.raises(InviteRefused) as refused:
        await upper.invite_sdp(await channel_of(cascade_hub, GATE), no_ps, timeout=WAIT)
    assert refused.value.status == 488
    stranger = await upper.request(
        "MESSAGE", f"sip:{HUB_ID}@127.0.0.1", to=f"sip:{HUB_ID}@3402000000",
        body=b"<?xml version=\"1.0\"?><Query><CmdType>Catalog</CmdType><SN>1</SN>"
        b"<DeviceID>x</DeviceID></Query>", content_type="Application/MANSCDP+xml",
        from_user="34020000002000000666",
    )  # fmt: skip
    assert stranger.status == 403
    await upper.send_raw(b"INVITE garbage\r\n\r\n")
    bad_body = await upper.send_manscdp(HUB_ID, b"<not xml", WAIT)
    assert bad_body.status == 400
    # Nothing was leaked and the cascade still works.
    cascade = cascade_of(cascade_hub)
    assert cascade.streams_open == 0
    assert cascade.ports._used == set()
    assert len(await upper.query_catalog(WAIT)) == len(await camera_ids(cascade_hub))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_upper_platform_verifies_our_digest(
    sqlite_backend: Backend, tmp_path: Path, transport: str
) -> None:
    """sipp plays the upper platform: it challenges, checks our digest answer with its own
    verifyauth, and takes a keepalive."""
    port = free_port()
    sipp = asyncio.ensure_future(
        run_sipp(
            "upper_register", "", timeout=30,
            extra_args=["-i", "127.0.0.1", "-p", str(port), "-t", "u1" if transport == "udp"
                        else "t1", "-m", "2", "-key", "realm", DOMAIN, "-key", "hub_id", HUB_ID,
                        "-key", "password", PASSWORD],
        )
    )  # fmt: skip
    # No wait for sipp's socket: the hub retries (with backoff) until sipp answers.
    running = await start_cascade_hub(sqlite_backend, tmp_path, port, transport=transport)
    try:
        result = await sipp
        assert result.successful == 2 and result.failed == 0, result
        assert cascade_of(running).counters.registrations >= 1
        assert cascade_of(running).counters.keepalives >= 1
    finally:
        await running.server.close()
