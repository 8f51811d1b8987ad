"""sipp (Debian's sip-tester) as a device against the hub: registration with digest,
keepalives, a catalog answer and an INVITE answer, each a scenario in tests/support/sipp/.
sipp must be installed (``make test`` installs it): without it these tests fail, loudly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from tests.conftest import Backend, RunningHub
from tests.integration.cameras.conftest import ADMIN
from tests.integration.gb28181.conftest import (
    PASSWORD,
    device_row,
    eventually,
    sip_port,
    start_gb_hub,
)
from tests.support.hubs import free_port
from tests.support.sipp import run_sipp, sipp_available, write_injection

HUB_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000001320000007"
CHANNEL = "34020101001320000007"


@pytest.fixture
async def sipp_hub(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A GB/T 28181 hub that expects keepalives every 30 s (sipp sends them only when told)."""
    running = await start_gb_hub(backend, tmp_path, keepalive_interval=30.0)
    try:
        yield running
    finally:
        await running.server.close()


def _keys(device: str = DEVICE) -> list[str]:
    return ["-key", "device_id", device, "-key", "hub_id", HUB_ID, "-key", "domain", DOMAIN]


async def _register(hub: RunningHub, port: int, device: str = DEVICE) -> None:
    auth = ["-au", device, "-ap", PASSWORD, "-auth_uri", f"sip:{HUB_ID}@{DOMAIN}"]
    result = await run_sipp(
        "register_auth", f"127.0.0.1:{sip_port(hub)}", timeout=20,
        extra_args=[*_keys(device), *auth, "-m", "1", "-i", "127.0.0.1", "-p", str(port)],
    )  # fmt: skip
    assert result.returncode == 0 and result.successful == 1, result.errors_tail


async def test_sipp_registers_with_digest_and_keeps_alive(
    sipp_hub: RunningHub, tmp_path: Path
) -> None:
    assert sipp_available(), "sipp is missing: apt-get install sip-tester (make test does)"
    await _register(sipp_hub, free_port())
    row = await device_row(sipp_hub, DEVICE)
    assert row is not None and row.status == "online"

    ids = write_injection(tmp_path / "ids.csv", [DEVICE])
    result = await run_sipp(
        "keepalive", f"127.0.0.1:{sip_port(sipp_hub)}", timeout=30,
        extra_args=["-inf", str(ids), "-key", "hub_id", HUB_ID, "-key", "domain", DOMAIN,
                    "-m", "200", "-r", "200", "-i", "127.0.0.1"],
    )  # fmt: skip
    assert result.returncode == 0, result.errors_tail
    assert (result.successful, result.failed) == (200, 0)
    adapter = sipp_hub.hub.gb28181
    assert adapter is not None and adapter.counters.keepalives == 200


async def test_sipp_with_a_wrong_password_is_refused(sipp_hub: RunningHub) -> None:
    auth = ["-au", DEVICE, "-ap", "wrong", "-auth_uri", f"sip:{HUB_ID}@{DOMAIN}"]
    result = await run_sipp(
        "register_auth", f"127.0.0.1:{sip_port(sipp_hub)}", timeout=10,
        extra_args=[*_keys(), *auth, "-m", "1", "-i", "127.0.0.1"],
    )  # fmt: skip
    assert result.successful == 0 and result.failed == 1
    assert await device_row(sipp_hub, DEVICE) is None


async def test_sipp_answers_a_catalog_query_and_an_invite(sipp_hub: RunningHub) -> None:
    port = free_port()
    await _register(sipp_hub, port)
    keys = ["-key", "device_id", DEVICE, "-key", "channel_id", CHANNEL, "-key", "domain", DOMAIN]
    # The hub queries the catalog right after the registration; sipp takes over the port the
    # registration came from a moment later and gets one of the query's UDP retransmissions.
    catalog = asyncio.create_task(
        run_sipp("catalog_uas", "", timeout=20,
                 extra_args=[*keys, "-s", HUB_ID, "-p", str(port), "-i", "127.0.0.1", "-m", "1"])
    )  # fmt: skip
    result = await catalog
    assert result.returncode == 0 and result.successful == 1, result.errors_tail
    camera_id = f"{DEVICE}_{CHANNEL}"

    async def imported() -> bool:
        return await sipp_hub.hub.cameras.get(camera_id) is not None  # type: ignore[union-attr]

    await eventually(imported, "the channel sipp's catalog named")

    media_port = free_port()
    invite = asyncio.create_task(
        run_sipp("invite_uas", "", timeout=30, extra_args=[
            "-key", "device_id", DEVICE, "-p", str(port), "-i", "127.0.0.1", "-m", "1",
            "-mi", "127.0.0.1", "-mp", str(media_port),
        ])
    )  # fmt: skip
    # sipp may bind its port after the INVITE went out: the INVITE's UDP retransmissions
    # (T1 doubling) reach it once it listens.
    async with aiohttp.ClientSession() as http:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        headers = {"Authorization": f"Bearer {ADMIN.token}", "Content-Type": "application/sdp"}
        async with http.post(
            f"{sipp_hub.url}/api/v1/cameras/{camera_id}/whep",
            data=pc.localDescription.sdp,
            headers=headers,
        ) as resp:
            assert resp.status == 503  # sipp signals but sends no media: 收流超时
        await pc.close()
    result = await invite
    assert result.returncode == 0 and result.successful == 1, result.errors_tail  # ACK, BYE
    adapter = sipp_hub.hub.gb28181
    assert adapter is not None and adapter.counters.invites.get("ok", 0) >= 1
