"""The baresip harness itself: two terminals call each other directly (no hub)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.baresip import Baresip, BaresipError, capture_invite, sdp_of
from tests.support.videonet_media import (
    BLUE,
    RED,
    colour_distance,
    dominant_colour,
    make_solid_clip,
)

COLOUR_TOLERANCE = 40.0
MEDIA_DEADLINE = 15.0

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/baresip").exists(), reason="baresip is not installed"
)


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    return {
        "a": make_solid_clip(tmp_path / "a.mp4", RED),
        "b": make_solid_clip(tmp_path / "b.mp4", BLUE),
    }


async def snapshot_until_received(bs: Baresip, path: Path) -> Path:
    """Ask for received-frame snapshots until one arrives (media has flowed) or time is up."""
    deadline = time.monotonic() + MEDIA_DEADLINE
    while True:
        try:
            return await bs.snapshot_recv(path, timeout=2.0)
        except BaresipError:
            if time.monotonic() > deadline:
                raise


async def test_invite_offer(tmp_path: Path, clips: dict[str, Path]) -> None:
    async with Baresip(tmp_path / "a", user="a", clip=clips["a"]) as a:
        invite = await capture_invite(a)
    print(invite)
    sdp = sdp_of(invite)
    assert "m=audio " in sdp and "m=video " in sdp
    assert "H264/90000" in sdp and "PCMU/8000" in sdp and "PCMA/8000" in sdp
    assert "opus/48000/2" in sdp
    assert "c=IN IP4 127.0.0.1" in sdp
    assert "RTP/AVP" in sdp and "SAVP" not in sdp and "ice-" not in sdp


async def test_two_terminals_call_each_other(tmp_path: Path, clips: dict[str, Path]) -> None:
    async with (
        Baresip(tmp_path / "a", user="a", clip=clips["a"]) as a,
        Baresip(tmp_path / "b", user="b", clip=clips["b"], answermode="auto") as b,
    ):
        await a.dial(b.contact_uri)
        # Auto-answer: baresip 1.0 emits no CALL_INCOMING, the call goes straight up.
        established_b = await b.wait_event("CALL_ESTABLISHED", timeout=10)
        established_a = await a.wait_event("CALL_ESTABLISHED", timeout=10)
        print(established_a, established_b, sep="\n")
        assert established_b["peeruri"].startswith("sip:a@127.0.0.1")
        assert established_a["peeruri"] == b.contact_uri

        png = await snapshot_until_received(a, tmp_path / "a_recv.png")
        colour = dominant_colour(png)
        assert colour_distance(colour, BLUE) < COLOUR_TOLERANCE, (colour, BLUE)
        png_b = await snapshot_until_received(b, tmp_path / "b_recv.png")
        colour_b = dominant_colour(png_b)
        print(f"A received {colour}, B received {colour_b}")
        assert colour_distance(colour_b, RED) < COLOUR_TOLERANCE, (colour_b, RED)

        await a.hangup()
        await b.wait_event("CALL_CLOSED", timeout=10)
        await a.wait_event("CALL_CLOSED", timeout=10)

        status = await b.kill()
        assert status == -9
        assert not b.running
        print("A events:", [e["type"] for e in a.events])
        print("B events:", [e["type"] for e in b.events])


async def test_kill_mid_call(tmp_path: Path, clips: dict[str, Path]) -> None:
    async with (
        Baresip(tmp_path / "a", user="a", clip=clips["a"], rtp_timeout=2) as a,
        Baresip(tmp_path / "b", user="b", clip=clips["b"]) as b,
    ):
        await a.dial(b.contact_uri)
        incoming = await b.wait_event("CALL_INCOMING", timeout=10)
        assert incoming["peeruri"] == "sip:a@127.0.0.1"
        await b.accept()
        await b.wait_event("CALL_ESTABLISHED", timeout=10)
        await a.wait_event("CALL_ESTABLISHED", timeout=10)
        await a.wait_event("CALL_RTPESTAB", timeout=10)  # media flows before the crash
        assert await b.kill() == -9
        assert not b.running
        # No BYE comes from a killed terminal: A closes the call itself, on ICMP "port
        # unreachable" for its RTP ("rtp stream error") or, failing that, rtp_timeout.
        closed = await a.wait_event("CALL_CLOSED", timeout=10)
        print(closed)
        assert a.running
