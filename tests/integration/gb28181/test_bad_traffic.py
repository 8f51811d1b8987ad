"""Bad traffic is refused and counted and takes nothing down: malformed and oversize SIP,
unknown devices, broken MANSCDP bodies, retransmissions (answered, never handled twice),
media with a wrong SSRC or from a wrong source, and a device that sends no media at all."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from sqlalchemy import select

from hub.db.models import OutboxEvent
from protocols.gb28181.rtp import RtpPacket, encode_rtp
from tests.conftest import Backend, RunningHub
from tests.integration.cameras.conftest import STREET
from tests.integration.cameras.test_whep import WhepViewer
from tests.integration.gb28181.conftest import (
    CAMERA,
    DEVICE,
    DeviceFactory,
    channel_device,
    eventually,
    sip_port,
    start_gb_hub,
)


class RawSip(asyncio.DatagramProtocol):
    """A bare UDP socket that sends bytes to the hub and queues what comes back."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)

    async def reply(self) -> str:
        """The next datagram from the hub, as text."""
        async with asyncio.timeout(5):
            return (await self.replies.get()).decode("utf-8", "replace")


@pytest.fixture
async def raw(gb_hub: RunningHub) -> AsyncIterator[tuple[RawSip, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        RawSip, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", sip_port(gb_hub))
    )
    try:
        yield protocol, int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


def keepalive(port: int, branch: str, body: bytes | None = None, device: str = DEVICE) -> bytes:
    """A keepalive MESSAGE as a device on 127.0.0.1:port sends it."""
    xml = (
        body
        if body is not None
        else (
            f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n'
            f"<CmdType>Keepalive</CmdType>\r\n<SN>7</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
        ).encode()
    )
    head = (
        f"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch={branch}\r\n"
        f"From: <sip:{device}@3402000000>;tag=raw1\r\n"
        f"To: <sip:34020000002000000001@3402000000>\r\n"
        f"Call-ID: raw-{branch}@127.0.0.1\r\nCSeq: 20 MESSAGE\r\nMax-Forwards: 70\r\n"
        f"Content-Type: Application/MANSCDP+xml\r\nContent-Length: {len(xml)}\r\n\r\n"
    )
    return head.encode() + xml


async def test_garbage_and_oversize_sip_are_counted_and_the_server_keeps_answering(
    gb_hub: RunningHub, devices: DeviceFactory, raw: tuple[RawSip, int]
) -> None:
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    sock, _ = raw
    assert sock.transport is not None
    sock.transport.sendto(b"\x00\xffthis is not SIP\r\n\r\n")
    sock.transport.sendto(b"MESSAGE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n")
    huge = b"MESSAGE sip:a@b SIP/2.0\r\nX-Pad: " + b"a" * 64000 + b"\r\n\r\n"
    sock.transport.sendto(huge)

    # TCP: a Content-Length far beyond the limit closes the connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", sip_port(gb_hub))
    writer.write(keepalive(1, "z9hG4bKbig").replace(b"Content-Length: ", b"Content-Length: 9999"))
    writer.write(b"x" * 1000)
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the hub
    writer.close()

    async def counted() -> bool:
        return adapter.transport.counters.rejected.get("malformed", 0) >= 4

    await eventually(counted, "four malformed messages counted")
    device = await devices()
    assert await device.register() == 200  # the server still works
    assert await device.keepalive() == 200


async def test_a_retransmitted_request_is_answered_again_but_handled_once(
    gb_hub: RunningHub, devices: DeviceFactory, raw: tuple[RawSip, int]
) -> None:
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    device = await devices()
    assert await device.register() == 200
    sock, port = raw
    assert sock.transport is not None
    before = adapter.counters.keepalives
    message = keepalive(port, "z9hG4bKonce")
    sock.transport.sendto(message)
    first = await sock.reply()
    sock.transport.sendto(message)
    second = await sock.reply()
    assert first.startswith("SIP/2.0 200") and second == first
    assert adapter.counters.keepalives == before + 1
    assert adapter.transport.counters.retransmissions_answered == 1


async def test_unknown_devices_and_broken_bodies_are_refused(
    gb_hub: RunningHub, devices: DeviceFactory, raw: tuple[RawSip, int]
) -> None:
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    sock, port = raw
    assert sock.transport is not None
    sock.transport.sendto(keepalive(port, "z9hG4bKwho", device="34020000001329999999"))
    assert (await sock.reply()).startswith("SIP/2.0 403")
    assert adapter.counters.rejected.get("unknown_device") == 1

    device = await devices()
    assert await device.register() == 200
    for branch, body in [
        ("z9hG4bKb1", b"<Notify><CmdType>Keepalive</CmdType>"),
        ("z9hG4bKb2", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Notify/>'),
        ("z9hG4bKb3", b"\xff\xfe\x00garbage"),
    ]:
        sock.transport.sendto(keepalive(port, branch, body))
        assert (await sock.reply()).startswith("SIP/2.0 400")
    assert adapter.counters.rejected.get("malformed_body") == 3
    assert await device.keepalive() == 200


@pytest.mark.parametrize("mode", ["silent", "wrong_ssrc", "garbage"])
async def test_no_usable_media_is_a_clear_media_timeout(
    sqlite_backend: Backend, tmp_path: Path, gb_clip: Path, mode: str
) -> None:
    running = await start_gb_hub(sqlite_backend, tmp_path, media_transport="udp")
    device = await channel_device(running, gb_clip, media_mode=mode)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{running.url}/api/v1/cameras/{CAMERA}/whep"
            auth = {"Authorization": f"Bearer {STREET.token}"}
            sdp = {**auth, "Content-Type": "application/sdp"}
            async with http.post(url, data=b"v=0\r\n", headers=sdp) as resp:
                assert resp.status == 400  # not an offer: refused before any INVITE
            assert device.invites == []
            pc = RTCPeerConnection()
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            assert pc.localDescription is not None
            async with http.post(url, data=pc.localDescription.sdp, headers=sdp) as resp:
                assert resp.status == 503, await resp.text()
                assert (await resp.json())["error"]["code"] == "camera.unavailable"
            await pc.close()
            assert len(device.invites) >= 1
        adapter = running.hub.gb28181
        assert adapter is not None and adapter.media_counters is not None
        counters = adapter.media_counters
        assert counters.media_timeouts >= 1
        assert counters.access_units == 0
        if mode == "wrong_ssrc":
            assert counters.ssrc_mismatches > 0
        if mode == "garbage":
            assert counters.malformed + counters.ssrc_mismatches > 0

        async def offline_with_reason() -> bool:
            async with running.hub.sessions() as session:
                payloads = await session.scalars(
                    select(OutboxEvent.payload).where(OutboxEvent.type == "camera.offline")
                )
                return any("收流超时" in p for p in payloads)

        await eventually(offline_with_reason, "camera.offline saying 收流超时")
        assert device.byes >= 1  # the refused stream was hung up
    finally:
        await device.close()
        await running.server.close()


async def test_media_from_another_address_is_dropped_and_counted(
    sqlite_backend: Backend, tmp_path: Path, gb_clip: Path
) -> None:
    running = await start_gb_hub(sqlite_backend, tmp_path, media_transport="udp")
    device = await channel_device(running, gb_clip)
    try:
        async with aiohttp.ClientSession() as http:
            viewer = WhepViewer(running.url, STREET.token, camera_id=CAMERA)
            await viewer.connect(http)
            await viewer.wait_frames(5)
            invite = device.invites[0]
            packet = encode_rtp(RtpPacket(True, 96, 1, 0, int(invite.ssrc), b"\x00" * 64))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
                intruder.bind(("127.0.0.3", 0))
                for _ in range(5):
                    intruder.sendto(packet, (invite.media_host, invite.media_port))
            adapter = running.hub.gb28181
            assert adapter is not None and adapter.media_counters is not None
            counters = adapter.media_counters

            async def counted() -> bool:
                return counters.wrong_source == 5

            await eventually(counted, "five packets from 127.0.0.3 dropped")
            seen = len(viewer.frames)
            await viewer.wait_frames(seen + 10)  # the stream goes on
            await viewer.close()
    finally:
        await device.close()
        await running.server.close()
