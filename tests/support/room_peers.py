"""Consultation participants for tests: real aiortc peer connections that send a generated
picture (one solid colour per participant) and tone (one frequency per participant) and
decode what the hub relays to them, so a test can tell whose media arrived where.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

VANISHED_CLOSE_TIMEOUT = 5.0
"""Seconds a vanished participant's own peer connection may take to close."""
SAMPLE_RATE = 48000
SAMPLES = 960


class ColourTrack(VideoStreamTrack):
    """Frames of one solid RGB colour."""

    def __init__(self, rgb: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> None:
        super().__init__()
        width, height = size
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        picture[:, :] = rgb
        self._picture = picture

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self._picture, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A sine tone in 20 ms stereo frames."""

    def __init__(self, hz: float) -> None:
        super().__init__()
        self._hz = hz
        self._t = 0
        self._origin: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._origin is None:
            self._origin = time.time()
        wait = self._origin + self._t / SAMPLE_RATE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        n = np.arange(self._t, self._t + SAMPLES)
        wave = (np.sin(2 * np.pi * self._hz * n / SAMPLE_RATE) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(wave, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._t
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._t += SAMPLES
        return frame


def dominant_rgb(frame: av.VideoFrame) -> tuple[int, int, int]:
    """The mean colour of a decoded picture."""
    rgb = frame.to_ndarray(format="rgb24")
    mean = rgb.reshape(-1, 3).mean(axis=0)
    return int(mean[0]), int(mean[1]), int(mean[2])


def dominant_hz(frames: list[av.AudioFrame]) -> float:
    """The strongest frequency in some decoded audio."""
    samples = np.concatenate([f.to_ndarray().reshape(-1)[::2] for f in frames]).astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


def colour_close(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 40) -> bool:
    """Whether two colours match within codec error."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@dataclass
class Received:
    """What one slot delivered."""

    video: list[tuple[int, int, int]] = field(default_factory=list)
    audio: list[av.AudioFrame] = field(default_factory=list)
    video_frames: int = 0
    audio_frames: int = 0


class Participant:
    """One aiortc participant: optional colour+tone upstream and ``slots`` receive slots."""

    def __init__(
        self,
        name: str,
        rgb: tuple[int, int, int] | None = None,
        hz: float | None = None,
        slots: int = 3,
    ) -> None:
        self.name = name
        self.rgb = rgb
        self.hz = hz
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.slot_count = slots
        self.received: dict[str, Received] = {}
        """Keyed by the transceiver mid that delivered the media."""
        self._readers: list[asyncio.Task[None]] = []
        self._transceivers: list[RTCRtpTransceiver] = []
        self.vanished = False
        self.slot_map: dict[str, str | None] = {}
        """mid → source id, from the hub's slot assignments."""

    async def offer(self) -> str:
        """The offer: the upstream pair first (sendrecv), then receive-only pairs."""
        pc = self.pc
        sending = self.rgb is not None
        for index in range(max(self.slot_count, 1 if sending else 0)):
            direction = "sendrecv" if index == 0 and sending else "recvonly"
            if index >= self.slot_count:
                direction = "sendonly"
            for kind in ("audio", "video"):
                self._transceivers.append(pc.addTransceiver(kind, direction=direction))
        if sending:
            assert self.rgb is not None and self.hz is not None
            self._transceivers[0].sender.replaceTrack(ToneTrack(self.hz))
            self._transceivers[1].sender.replaceTrack(ColourTrack(self.rgb))

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
            assert mid is not None
            self._readers.append(asyncio.ensure_future(self._read(mid, track)))

        await pc.setLocalDescription(await pc.createOffer())
        local = pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def accept(self, answer: str) -> None:
        """Apply the hub's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def apply_slots(self, slots: list[dict[str, object]]) -> None:
        """Remember which source plays on which mid."""
        for slot in slots:
            for key in ("audio_mid", "video_mid"):
                mid = slot.get(key)
                if isinstance(mid, str):
                    source = slot.get("source")
                    self.slot_map[mid] = source if isinstance(source, str) else None

    async def _read(self, mid: str, track: MediaStreamTrack) -> None:
        got = self.received.setdefault(mid, Received())
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    got.video_frames += 1
                    got.video.append(dominant_rgb(frame))
                    del got.video[:-50]
                elif isinstance(frame, av.AudioFrame):
                    got.audio_frames += 1
                    got.audio.append(frame)
                    del got.audio[:-50]
        except MediaStreamError:
            return

    def from_source(self, source: str) -> list[Received]:
        """What arrived on the mids currently showing ``source``."""
        return [
            self.received[m] for m, s in self.slot_map.items() if s == source and m in self.received
        ]

    def frames_from(self, source: str, kind: str) -> int:
        """Frames decoded so far from ``source``'s ``kind`` track."""
        mids = [m for m, s in self.slot_map.items() if s == source]
        total = 0
        for t in self.pc.getTransceivers():
            if t.mid in mids and t.kind == kind and t.mid in self.received:
                got = self.received[t.mid]
                total += got.video_frames if kind == "video" else got.audio_frames
        return total

    def last_colour(self, source: str) -> tuple[int, int, int] | None:
        """The latest picture's colour from ``source``."""
        for t in self.pc.getTransceivers():
            if t.kind == "video" and self.slot_map.get(t.mid or "") == source:
                got = self.received.get(t.mid or "")
                if got and got.video:
                    return got.video[-1]
        return None

    def audio_from(self, source: str) -> list[av.AudioFrame]:
        """Recent decoded audio from ``source``."""
        for t in self.pc.getTransceivers():
            if t.kind == "audio" and self.slot_map.get(t.mid or "") == source:
                got = self.received.get(t.mid or "")
                if got:
                    return list(got.audio)
        return []

    def vanish(self) -> None:
        """The network dies: close the ICE sockets without a word (no DTLS close_notify, no
        RTCP BYE, no consent answers), as a phone that loses coverage would."""
        self.vanished = True
        transport = self.pc.getTransceivers()[0].receiver.transport.transport
        connection = transport._connection
        for protocol in connection._protocols:
            if protocol.transport is not None:
                protocol.transport.close()

    def state(self) -> str:
        """The peer connection's state."""
        return str(self.pc.connectionState)

    async def close(self) -> None:
        """Hang up. A vanished peer's own connection is half torn down already: aiortc may
        wait forever closing it (seen in CI), so that close is bounded."""
        if self.vanished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pc.close(), VANISHED_CLOSE_TIMEOUT)
        else:
            await self.pc.close()
        for reader in self._readers:
            reader.cancel()
