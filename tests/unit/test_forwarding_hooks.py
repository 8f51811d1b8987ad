"""The aiortc hooks rooms forward media with (streams/forwarding.py): if an aiortc upgrade
moves the internals they use, these fail loudly instead of rooms silently decoding."""

from __future__ import annotations

import asyncio

import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from streams import forwarding
from tests.support.room_peers import ColourTrack, ToneTrack


def test_the_installed_aiortc_is_the_one_the_hooks_were_written_for() -> None:
    forwarding.check()
    assert aiortc.__version__ == forwarding.PINNED_AIORTC


async def test_a_tapped_receiver_hands_over_encoded_frames_and_decodes_none() -> None:
    sender_pc, hub_pc = RTCPeerConnection(), RTCPeerConnection()
    frames: dict[str, list[bytes]] = {"audio": [], "video": []}
    levels: list[int] = []
    enough = asyncio.Event()
    keyframe_requested = asyncio.Event()
    try:
        sender_pc.addTrack(ToneTrack(440))
        video_sender = sender_pc.addTrack(ColourTrack((0, 255, 0)))
        sender_pc.getTransceivers()[1].setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        )
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        assert sender_pc.localDescription is not None
        await hub_pc.setRemoteDescription(sender_pc.localDescription)
        taps = {}
        for transceiver in hub_pc.getTransceivers():
            kind = transceiver.kind

            def sink(mime: str, data: bytes, ts: int, kind: str = kind) -> None:
                frames[kind].append(data)
                if len(frames["video"]) >= 10 and len(frames["audio"]) >= 25:
                    enough.set()

            forwarding.tap_receiver(transceiver.receiver, sink)
            taps[kind] = transceiver.receiver
            if kind == "audio":
                forwarding.watch_audio_level(transceiver.receiver, levels.append)
        # The far end's keyframe requests arrive at its sender: catch them there.
        forwarding.on_keyframe_request(video_sender, keyframe_requested.set)
        await hub_pc.setLocalDescription(await hub_pc.createAnswer())
        assert hub_pc.localDescription is not None
        await sender_pc.setRemoteDescription(hub_pc.localDescription)

        await asyncio.wait_for(enough.wait(), 15)
        # H.264 arrives as Annex-B access units, the first one a keyframe with its SPS.
        assert frames["video"][0].startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
        assert any(b & 0x1F == 7 for b in frames["video"][0][4:5])
        assert levels and min(levels) < 60  # the tone is loud
        # Nothing reached aiortc's decoder: the track delivers no decoded frame.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await taps["video"].track.recv()
        pli = forwarding.send_pli(taps["video"])
        assert pli is not None
        await pli
        await asyncio.wait_for(keyframe_requested.wait(), 10)
        assert forwarding.packets_received(hub_pc) > 0
    finally:
        await sender_pc.close()
        await hub_pc.close()


async def test_tapping_a_started_receiver_is_refused() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        setattr(transceiver.receiver, "_RTCRtpReceiver__started", True)  # noqa: B010
        with pytest.raises(forwarding.HookError):
            forwarding.tap_receiver(transceiver.receiver, lambda m, d, t: None)
    finally:
        setattr(transceiver.receiver, "_RTCRtpReceiver__started", False)  # noqa: B010
        await pc.close()
