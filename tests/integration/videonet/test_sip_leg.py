"""A SIP terminal's media leg in a room (streams/sip_leg.py), against a stand-in terminal of
plain UDP sockets: H.264 and audio flow both ways without decoding or encoding video, the
terminal sees the host's pick on one continuous RTP stream, keyframe requests cross in both
directions, silence and BYE are found out, and closing gives everything back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from protocols.gb28181.rtp import RtpPacket, encode_rtp, parse_rtp
from protocols.rtp.g711 import ulaw_decode, ulaw_encode
from protocols.rtp.h264 import H264Depacketizer, H264Packetizer
from protocols.rtp.rtcp import build_bye, keyframe_request, scan_rtcp
from streams.ps_pull import PortPool
from streams.relay import CameraRelay, RelayCounters
from streams.room import MediaRoom, RoomConfig, RoomCounters, Source
from streams.sip_leg import LegCounters, LegError, LegMedia, SipLeg
from streams.source import MediaPacket

Rgb = tuple[int, int, int]
RED: Rgb = (200, 30, 30)
GREEN: Rgb = (30, 200, 30)
BLUE: Rgb = (30, 30, 200)
VIDEO_PT = 109
WAIT = 15.0
FPS = 25


def colour_close(a: Rgb, b: Rgb, tolerance: int = 45) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def make_clip(colour: Rgb, frames: int = 50, gop: int = 10) -> list[tuple[bytes, bool]]:
    """A solid-colour H.264 constrained-baseline clip: Annex-B access units."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = 320, 240
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.gop_size = gop
    codec.max_b_frames = 0
    codec.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency"}
    picture = np.empty((240, 320, 3), dtype=np.uint8)
    picture[:, :] = colour
    out: list[tuple[bytes, bool]] = []
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = index
        out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    return out


def mean_rgb(frame: av.VideoFrame) -> Rgb:
    mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return int(mean[0]), int(mean[1]), int(mean[2])


def peak_hz(samples: np.ndarray[Any, Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(samples))


def tone(
    hz: float, start: int, count: int, rate: int, amplitude: int = 8000
) -> np.ndarray[Any, Any]:
    n = np.arange(start, start + count)
    return (np.sin(2 * np.pi * hz * n / rate) * amplitude).astype(np.int16)


async def until(check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition that no event signals (bounded)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110  (datagrams arrive on sockets, no event to await)
            await asyncio.sleep(0.02)


class _Sock(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        self.arrived.set()


@dataclass
class Pair:
    port: int
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    rtp_in: _Sock
    rtcp_in: _Sock


async def bind_pair() -> Pair:
    loop = asyncio.get_running_loop()
    for _ in range(200):
        port = random.randrange(20000, 30000, 2)
        try:
            rtp, rtp_in = await loop.create_datagram_endpoint(_Sock, local_addr=("127.0.0.1", port))
        except OSError:
            continue
        try:
            rtcp, rtcp_in = await loop.create_datagram_endpoint(
                _Sock, local_addr=("127.0.0.1", port + 1)
            )
        except OSError:
            rtp.close()
            continue
        return Pair(port, rtp, rtcp, rtp_in, rtcp_in)
    raise RuntimeError("no free port pair for the test terminal")


@dataclass
class Terminal:
    """A stand-in SIP terminal: RTP/RTCP sockets, senders and what it received."""

    video: Pair
    audio: Pair
    leg_ports: tuple[int, int] = (0, 0)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def media(self, codec: str = "PCMU", pt: int = 0, mode: int = 1) -> LegMedia:
        return LegMedia("127.0.0.1", self.video.port, VIDEO_PT, mode, self.audio.port, pt, codec)

    def send_video(self, clip: list[tuple[bytes, bool]], skip_keyframes: bool = False) -> None:
        async def run() -> None:
            packetizer = H264Packetizer(0x5EED, VIDEO_PT, first_sequence=65000)
            index = 0
            loop = asyncio.get_running_loop()
            due = loop.time()
            while True:
                data, key = clip[index % len(clip)]
                index += 1
                if not (skip_keyframes and key):
                    for rtp in packetizer.packets(data, 1_000_000 + index * 3600):
                        self.video.rtp.sendto(rtp, ("127.0.0.1", self.leg_ports[0]))
                due += 1 / FPS
                await asyncio.sleep(max(0.0, due - loop.time()))

        self.tasks.append(asyncio.get_running_loop().create_task(run()))

    def send_pcmu(self, hz: float) -> None:
        async def run() -> None:
            sequence, t = 100, 0
            loop = asyncio.get_running_loop()
            due = loop.time()
            while True:
                payload = ulaw_encode(tone(hz, t, 160, 8000).astype("<i2").tobytes())
                packet = RtpPacket(
                    False, 0, sequence, (0xFFFFF000 + t) % (1 << 32), 0xA0D10, payload
                )
                self.audio.rtp.sendto(encode_rtp(packet), ("127.0.0.1", self.leg_ports[1]))
                sequence, t = (sequence + 1) % 65536, t + 160
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

        self.tasks.append(asyncio.get_running_loop().create_task(run()))

    async def stop_sending(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    def video_packets(self) -> list[RtpPacket]:
        return [parse_rtp(d) for d in self.video.rtp_in.received]

    def decoded_colours(self) -> list[Rgb]:
        depacketizer = H264Depacketizer()
        decoder = av.CodecContext.create("h264", "r")
        colours: list[Rgb] = []
        for packet in self.video_packets():
            for annexb, _, _ in depacketizer.push(packet):
                colours += [mean_rgb(f) for f in decoder.decode(av.Packet(annexb))]
        return colours

    async def close(self) -> None:
        await self.stop_sending()
        for pair in (self.video, self.audio):
            pair.rtp.close()
            pair.rtcp.close()


@dataclass
class Env:
    room: MediaRoom
    counters: LegCounters
    pool: PortPool
    terminal: Terminal
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    legs: list[SipLeg] = field(default_factory=list)

    def camera(self, source_id: str, colour: Rgb) -> Source:
        """A camera feed looping a solid-colour clip into the room."""
        relay = CameraRelay(RelayCounters(), 150, 300, 8 << 20)
        source = self.room.add_feed(source_id, relay.attach(), False)
        clip = make_clip(colour)

        async def run() -> None:
            index = 0
            while True:
                data, key = clip[index % len(clip)]
                relay.publish(
                    MediaPacket(data, index * 3600, index * 3600, key, Fraction(1, 90000))
                )
                index += 1
                await asyncio.sleep(1 / FPS)

        self.tasks.append(asyncio.get_running_loop().create_task(run()))
        return source

    def opus_speaker(self, source_id: str, hz: float) -> Source:
        """An audio-only source publishing Opus of a tone (as a WebRTC participant would)."""
        source = self.room.add_leg_source(source_id, video=False)
        encoder = av.CodecContext.create("libopus", "w")
        encoder.format, encoder.layout, encoder.sample_rate = "s16", "stereo", 48000
        encoder.time_base = Fraction(1, 48000)

        async def run() -> None:
            t = 0
            loop = asyncio.get_running_loop()
            due = loop.time()
            while True:
                frame = av.AudioFrame.from_ndarray(
                    np.repeat(tone(hz, t, 960, 48000), 2).reshape(1, -1),
                    format="s16",
                    layout="stereo",
                )
                frame.sample_rate = 48000
                for packet in encoder.encode(frame):
                    source.publish(
                        "audio", MediaPacket(bytes(packet), t, t, True, Fraction(1, 48000))
                    )
                t += 960
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

        self.tasks.append(asyncio.get_running_loop().create_task(run()))
        return source

    async def leg(self, **kwargs: Any) -> SipLeg:
        leg = SipLeg(self.room, "sip:terminal", self.counters, **kwargs)
        self.legs.append(leg)
        self.terminal.leg_ports = await leg.bind("127.0.0.1", self.pool)
        return leg


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    executor = ThreadPoolExecutor(2)
    config = RoomConfig(watch_interval=0.1, keyframe_interval=0.05)
    room = MediaRoom("leg-room", config, RoomCounters(), lambda kind, data: None, executor)
    low = random.randrange(40000, 60000, 2)
    terminal = Terminal(await bind_pair(), await bind_pair())
    made = Env(room, LegCounters(), PortPool(low, low + 19), terminal)
    try:
        yield made
    finally:
        for leg in made.legs:
            await leg.close()
        for task in made.tasks:
            task.cancel()
        await asyncio.gather(*made.tasks, return_exceptions=True)
        await terminal.close()
        await room.close()
        executor.shutdown(wait=False)


async def test_media_flows_both_ways_without_touching_video(env: Env) -> None:
    env.camera("camera:red", RED)
    env.opus_speaker("speaker", 1000.0)
    leg = await env.leg()
    video_port, audio_port = env.terminal.leg_ports
    assert video_port % 2 == 0 and audio_port % 2 == 0
    leg.start(env.terminal.media())
    source = env.room.sources["sip:terminal"]
    video_in, audio_in = source.relays["video"].attach(), source.relays["audio"].attach()
    env.terminal.send_video(make_clip(BLUE))
    env.terminal.send_pcmu(440.0)

    # terminal -> room: blue access units, Opus of the 440 Hz tone
    decoder = av.CodecContext.create("h264", "r")
    blues: list[Rgb] = []
    async with asyncio.timeout(WAIT):
        while len(blues) < 10:
            item = await video_in.get()
            assert item is not None
            blues += [mean_rgb(f) for f in decoder.decode(av.Packet(item.data))]
    assert all(colour_close(c, BLUE) for c in blues), blues[:3]
    opus = av.CodecContext.create("libopus", "r")
    opus.format, opus.layout, opus.sample_rate = "s16", "stereo", 48000
    pcm: list[np.ndarray[Any, Any]] = []
    async with asyncio.timeout(WAIT):
        while sum(len(p) for p in pcm) < 48000:
            item = await audio_in.get()
            assert item is not None and item.time_base == Fraction(1, 48000)
            pcm += [f.to_ndarray().reshape(-1)[::2] for f in opus.decode(av.Packet(item.data))]
    assert abs(peak_hz(np.concatenate(pcm)[4800:], 48000) - 440) <= 20
    assert source.level < 60  # the terminal talks: it can become the active speaker

    # room -> terminal: the camera's red on one SSRC at the negotiated PT; PCMU with 1 kHz
    await until(lambda: len(env.terminal.decoded_colours()) >= 10)
    await until(lambda: len(env.terminal.audio.rtp_in.received) >= 75)
    colours = env.terminal.decoded_colours()
    assert all(colour_close(c, RED) for c in colours), colours[:3]
    video = env.terminal.video_packets()
    assert {p.ssrc for p in video} == {video[0].ssrc}
    assert {p.payload_type for p in video} == {VIDEO_PT}
    audio = [parse_rtp(d) for d in env.terminal.audio.rtp_in.received]
    assert {p.payload_type for p in audio} == {0} and {p.ssrc for p in audio} == {audio[0].ssrc}
    assert all(len(p.payload) == 160 for p in audio)
    steps = {(b.timestamp - a.timestamp) % (1 << 32) for a, b in itertools.pairwise(audio)}
    assert steps == {160}
    heard = np.frombuffer(b"".join(ulaw_decode(p.payload) for p in audio[-50:]), dtype="<i2")
    assert abs(peak_hz(heard, 8000) - 1000) <= 20
    assert leg.showing == "camera:red"

    assert env.counters.video_frames_in >= 10 and env.counters.video_frames_out >= 10
    assert env.counters.video_frames_decoded == 0 and env.counters.video_frames_encoded == 0
    assert env.room.counters.frames_decoded == 0 and env.room.counters.frames_encoded == 0
    assert env.counters.audio_frames_decoded > 0 and env.counters.audio_frames_encoded > 0
    assert env.counters.legs_open == 1


async def test_show_switches_on_one_continuous_stream(env: Env) -> None:
    env.camera("camera:red", RED)
    green = env.camera("camera:green", GREEN)
    asked: list[int] = []
    green._pli = lambda: asked.append(1)
    leg = await env.leg()
    leg.start(env.terminal.media())
    await until(lambda: len(env.terminal.decoded_colours()) >= 5)
    assert leg.showing == "camera:red" and not asked

    leg.show("camera:green")
    assert leg.showing == "camera:green" and asked  # the new source was asked for a keyframe
    await until(lambda: any(colour_close(c, GREEN) for c in env.terminal.decoded_colours()))
    await until(lambda: len(env.terminal.decoded_colours()) >= 20)
    colours = env.terminal.decoded_colours()
    first_green = next(i for i, c in enumerate(colours) if colour_close(c, GREEN))
    assert all(colour_close(c, RED) for c in colours[:first_green])
    assert all(colour_close(c, GREEN) for c in colours[first_green:])
    packets = env.terminal.video_packets()
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets))
    stamps = [p.timestamp for p in packets]
    assert all(0 <= (b - a) % (1 << 32) < 90000 for a, b in itertools.pairwise(stamps))

    leg.show(None)  # back to following the room (nobody speaks: keeps what it shows)
    assert leg.showing == "camera:green"


async def test_keyframe_requests_cross_both_ways(env: Env) -> None:
    red = env.camera("camera:red", RED)
    asked: list[int] = []
    red._pli = lambda: asked.append(1)
    leg = await env.leg(keyframe_interval=0.2)
    leg.start(env.terminal.media())
    await until(lambda: leg.showing == "camera:red")
    await asyncio.sleep(0.1)  # past the room's keyframe_interval of the switch's request
    before = len(asked)

    # the terminal's PLI (on the leg's video port + 1) reaches the shown source
    env.terminal.video.rtcp.sendto(
        keyframe_request(0x5EED, 0), ("127.0.0.1", env.terminal.leg_ports[0] + 1)
    )
    await until(lambda: env.counters.keyframe_requests_received == 1)
    await until(lambda: len(asked) > before)

    # a terminal sending no keyframe is sent PLI + FIR on its video port + 1, rate-limited
    env.terminal.send_video(make_clip(BLUE), skip_keyframes=True)
    await asyncio.wait_for(env.terminal.video.rtcp_in.arrived.wait(), WAIT)
    events = scan_rtcp(env.terminal.video.rtcp_in.received[0])
    assert events.pli and events.fir and not events.malformed
    await asyncio.sleep(0.5)
    sent = env.counters.keyframe_requests_sent
    assert 1 <= sent <= 4  # once per 0.2 s at most
    assert len(env.terminal.video.rtcp_in.received) == sent
    assert env.counters.video_frames_in == 0  # nothing published before a keyframe

    # the room asking the leg's source lands at the terminal too
    await asyncio.sleep(0.25)
    count = len(env.terminal.video.rtcp_in.received)
    env.room.sources["sip:terminal"].request_keyframe()
    await until(lambda: len(env.terminal.video.rtcp_in.received) > count)


async def test_silence_from_the_terminal_is_found_out(env: Env) -> None:
    lost = asyncio.Event()
    reasons: list[str] = []

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    leg = await env.leg(rtp_timeout=1.0, on_lost=on_lost)
    leg.start(env.terminal.media())
    env.terminal.send_pcmu(440.0)
    await asyncio.sleep(1.5)  # flowing longer than the timeout: not lost
    assert not lost.is_set()
    await env.terminal.stop_sending()
    await asyncio.wait_for(lost.wait(), 1.0 + 1.0)
    assert reasons == ["rtp_timeout"] and env.counters.rtp_timeouts == 1
    await asyncio.sleep(0.5)
    assert reasons == ["rtp_timeout"]  # once


async def test_rtcp_bye_is_reported(env: Env) -> None:
    lost = asyncio.Event()
    reasons: list[str] = []

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    leg = await env.leg(on_lost=on_lost)
    leg.start(env.terminal.media())
    env.terminal.audio.rtcp.sendto(build_bye(0xA0D10), ("127.0.0.1", env.terminal.leg_ports[1] + 1))
    await asyncio.wait_for(lost.wait(), WAIT)
    assert reasons == ["rtcp_bye"]


async def test_close_gives_everything_back(env: Env) -> None:
    everything = set(env.pool.candidates())
    leg = await env.leg()
    taken = {env.terminal.leg_ports[0], env.terminal.leg_ports[0] + 1}
    taken |= {env.terminal.leg_ports[1], env.terminal.leg_ports[1] + 1}
    assert set(env.pool.candidates()) == everything - taken
    leg.start(env.terminal.media(codec="opus", pt=111))
    assert "sip:terminal" in env.room.sources
    await until(lambda: len(env.terminal.audio.rtp_in.received) >= 5)  # Opus silence, paced
    assert {parse_rtp(d).payload_type for d in env.terminal.audio.rtp_in.received} == {111}
    await leg.close()
    await leg.close()  # idempotent
    assert "sip:terminal" not in env.room.sources
    assert set(env.pool.candidates()) == everything
    assert env.counters.legs_open == 0
    # the terminal is told goodbye on both RTCP ports
    await asyncio.wait_for(env.terminal.audio.rtcp_in.arrived.wait(), WAIT)
    assert scan_rtcp(env.terminal.audio.rtcp_in.received[-1]).bye
    # the ports bind again
    again = SipLeg(env.room, "sip:again", env.counters)
    env.legs.append(again)
    await again.bind("127.0.0.1", env.pool)


async def test_an_exhausted_pool_is_a_leg_error(env: Env) -> None:
    blocker = await bind_pair()
    try:
        pool = PortPool(blocker.port, blocker.port + 3)  # one pair busy, one free
        leg = SipLeg(env.room, "sip:terminal", env.counters)
        env.legs.append(leg)
        with pytest.raises(LegError), contextlib.suppress(asyncio.CancelledError):
            await leg.bind("127.0.0.1", pool)
        assert set(pool.candidates()) == set(range(blocker.port, blocker.port + 4))
        assert isinstance(LegError(), OSError)
    finally:
        blocker.rtp.close()
        blocker.rtcp.close()
